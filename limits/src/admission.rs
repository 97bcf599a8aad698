//! Admission control: how many invocations may run at once, on the host, per tenant
//! (project) and per function.
//!
//! The host-wide cap keeps tenant limits from multiplying: without authentication any project
//! id is a tenant, so a caller inventing ids would otherwise get 100 more slots per id.
//!
//! FunctionGraph gives a tenant 100 concurrent executions by default, and a function at most
//! `max_instance_num` instances (its `strategy_config.concurrency`; -1 unlimited, 0 disabled).
//! Each running invocation holds a [`Permit`]; dropping it frees the slot and wakes whoever
//! waits for capacity. A sync call that finds no slot is refused at once (429); async
//! requests wait in their queue until [`Admission::subscribe`] says a slot was freed.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::watch;

/// Why an invocation was not admitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The host's concurrent executions are all in use.
    Host { limit: usize },
    /// The tenant's concurrent executions are all in use.
    Tenant { limit: usize },
    /// The function runs `max_instance_num` invocations already.
    Function { limit: u32 },
    /// The function's `max_instance_num` is 0.
    Disabled,
}

#[derive(Default)]
struct Counts {
    total: usize,
    tenants: HashMap<String, usize>,
    functions: HashMap<String, u32>,
}

/// Counts running invocations against the limits.
pub struct Admission {
    host_limit: usize,
    tenant_limit: usize,
    counts: Arc<Mutex<Counts>>,
    freed: Arc<watch::Sender<u64>>,
}

impl Admission {
    /// `tenant_limit`: concurrent executions per project; `host_limit`: on the whole host.
    pub fn new(tenant_limit: usize, host_limit: usize) -> Self {
        Self {
            host_limit,
            tenant_limit,
            counts: Arc::default(),
            freed: Arc::new(watch::channel(0).0),
        }
    }

    pub fn tenant_limit(&self) -> usize {
        self.tenant_limit
    }

    /// Takes a slot for an invocation of `function_id` in `project_id`, whose
    /// `max_instance_num` is `function_limit` (-1 unlimited, 0 disabled).
    pub fn try_acquire(
        &self,
        project_id: &str,
        function_id: &str,
        function_limit: i32,
    ) -> Result<Permit, Refusal> {
        if function_limit == 0 {
            return Err(Refusal::Disabled);
        }
        let mut counts = self.counts.lock().unwrap();
        if counts.total >= self.host_limit {
            return Err(Refusal::Host {
                limit: self.host_limit,
            });
        }
        let tenant = counts.tenants.get(project_id).copied().unwrap_or(0);
        if tenant >= self.tenant_limit {
            return Err(Refusal::Tenant {
                limit: self.tenant_limit,
            });
        }
        let function = counts.functions.get(function_id).copied().unwrap_or(0);
        if function_limit > 0 && function >= function_limit as u32 {
            return Err(Refusal::Function {
                limit: function_limit as u32,
            });
        }
        counts.total += 1;
        increment(&mut counts.tenants, project_id);
        increment(&mut counts.functions, function_id);
        Ok(Permit {
            project_id: project_id.to_string(),
            function_id: function_id.to_string(),
            counts: self.counts.clone(),
            freed: self.freed.clone(),
        })
    }

    /// Invocations running now in `project_id`.
    pub fn running(&self, project_id: &str) -> usize {
        self.counts
            .lock()
            .unwrap()
            .tenants
            .get(project_id)
            .copied()
            .unwrap_or(0)
    }

    /// Invocations of `function_id` running now.
    pub fn running_function(&self, function_id: &str) -> usize {
        self.counts
            .lock()
            .unwrap()
            .functions
            .get(function_id)
            .map_or(0, |n| *n as usize)
    }

    /// Changes whenever a slot is freed.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.freed.subscribe()
    }
}

/// Counts one more for `key`, allocating the key only the first time.
fn increment<N: Default + std::ops::AddAssign + From<u8>>(map: &mut HashMap<String, N>, key: &str) {
    match map.get_mut(key) {
        Some(n) => *n += N::from(1),
        None => {
            map.insert(key.to_string(), N::from(1));
        }
    }
}

/// A running invocation's slot; freed on drop.
pub struct Permit {
    project_id: String,
    function_id: String,
    counts: Arc<Mutex<Counts>>,
    freed: Arc<watch::Sender<u64>>,
}

impl Drop for Permit {
    fn drop(&mut self) {
        {
            let mut counts = self.counts.lock().unwrap();
            counts.total -= 1;
            if let Some(n) = counts.tenants.get_mut(&self.project_id) {
                *n -= 1;
                if *n == 0 {
                    counts.tenants.remove(&self.project_id);
                }
            }
            if let Some(n) = counts.functions.get_mut(&self.function_id) {
                *n -= 1;
                if *n == 0 {
                    counts.functions.remove(&self.function_id);
                }
            }
        }
        self.freed.send_modify(|n| *n = n.wrapping_add(1));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenant_and_function_limits() {
        let admission = Admission::new(2, 100);
        let a = admission.try_acquire("p", "f1", -1).unwrap();
        let b = admission.try_acquire("p", "f2", -1).unwrap();
        assert_eq!(
            admission.try_acquire("p", "f3", -1).err(),
            Some(Refusal::Tenant { limit: 2 })
        );
        // Another tenant has its own budget.
        let _c = admission.try_acquire("q", "f9", -1).unwrap();
        drop(a);
        let _d = admission.try_acquire("p", "f1", 1).unwrap();
        assert_eq!(
            admission.try_acquire("p", "f1", 1).err(),
            Some(Refusal::Tenant { limit: 2 })
        );
        drop(b);
        assert_eq!(
            admission.try_acquire("p", "f1", 1).err(),
            Some(Refusal::Function { limit: 1 })
        );
        assert_eq!(
            admission.try_acquire("p", "f5", 0).err(),
            Some(Refusal::Disabled)
        );
        assert_eq!(admission.running("p"), 1);
    }

    #[test]
    fn the_host_cap_holds_whatever_the_project_ids() {
        let admission = Admission::new(2, 3);
        let permits: Vec<_> = ["a", "b", "c"]
            .iter()
            .map(|p| admission.try_acquire(p, p, -1).unwrap())
            .collect();
        assert_eq!(
            admission.try_acquire("invented", "f", -1).err(),
            Some(Refusal::Host { limit: 3 })
        );
        drop(permits);
        assert!(admission.try_acquire("invented", "f", -1).is_ok());
    }

    #[test]
    fn freeing_a_slot_notifies() {
        let admission = Admission::new(1, 100);
        let mut rx = admission.subscribe();
        let permit = admission.try_acquire("p", "f", -1).unwrap();
        assert!(!rx.has_changed().unwrap());
        drop(permit);
        assert!(rx.has_changed().unwrap());
        rx.mark_unchanged();
        assert_eq!(admission.running("p"), 0);
    }
}
