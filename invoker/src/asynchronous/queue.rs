//! Requests waiting to run: a FIFO per function, taken round robin across functions, and
//! retries that wait for their backoff. New requests are bounded per function and per project
//! ([`Queue::has_room`]); a request already accepted (a retry, one recovered at start) is never
//! refused.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Instant;

use bytes::Bytes;
use tokio::sync::{oneshot, Notify};

/// One async request on its way to (another) attempt.
#[derive(Debug, Clone)]
pub struct Job {
    pub request_id: String,
    pub project_id: String,
    pub package: String,
    pub func_name: String,
    pub func_id: String,
    pub event: Bytes,
    pub accepted_ms: i64,
    /// Attempts made so far.
    pub attempts: u32,
    /// Instance starts that failed for the host's reasons, retried without counting as
    /// attempts (in memory: a restart counts anew).
    pub start_retries: u32,
    /// Not to run before this instant (retry backoff).
    pub not_before: Option<Instant>,
    /// Destination hops that led to this request (0: a caller's).
    pub depth: u32,
}

#[derive(Default)]
struct Inner {
    by_function: HashMap<String, VecDeque<Job>>,
    /// Waiting jobs per project.
    by_project: HashMap<String, usize>,
    /// Functions with waiting jobs, in the order they are served.
    order: VecDeque<String>,
}

/// How many new requests may wait.
#[derive(Debug, Clone, Copy)]
pub struct QueueLimits {
    pub per_function: usize,
    pub per_project: usize,
}

/// Why a new request may not wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueFull {
    Function(usize),
    Project(usize),
}

/// The waiting requests of the host, and a way to stop the running ones.
pub struct Queue {
    limits: QueueLimits,
    inner: Mutex<Inner>,
    changed: Notify,
    /// Running requests by (function id, request id): a request can only be stopped through
    /// the function it belongs to, so a request id alone reaches nothing of another tenant.
    running: Mutex<HashMap<(String, String), oneshot::Sender<()>>>,
    /// Set when the host stops: nothing more is handed out.
    closed: std::sync::atomic::AtomicBool,
}

impl Queue {
    pub fn new(limits: QueueLimits) -> Self {
        Self {
            limits,
            inner: Mutex::default(),
            changed: Notify::new(),
            running: Mutex::default(),
            closed: Default::default(),
        }
    }

    /// Whether a new request of `func_id` in `project_id` may wait (checked before it is
    /// accepted; concurrent accepts may overshoot by as many as are in flight).
    /// Hands out nothing more (the host is stopping): what waits stays WAIT in the journal,
    /// for this host's restart or, in a shared database, another host.
    pub fn close(&self) {
        self.closed.store(true, std::sync::atomic::Ordering::SeqCst);
        self.changed.notify_one();
    }

    pub fn is_closed(&self) -> bool {
        self.closed.load(std::sync::atomic::Ordering::SeqCst)
    }

    pub fn has_room(&self, project_id: &str, func_id: &str) -> Result<(), QueueFull> {
        let inner = self.inner.lock().unwrap();
        if inner.by_function.get(func_id).map_or(0, VecDeque::len) >= self.limits.per_function {
            return Err(QueueFull::Function(self.limits.per_function));
        }
        if inner.by_project.get(project_id).copied().unwrap_or(0) >= self.limits.per_project {
            return Err(QueueFull::Project(self.limits.per_project));
        }
        Ok(())
    }

    /// Adds a job at the end of its function's queue.
    pub fn push(&self, job: Job) {
        let mut inner = self.inner.lock().unwrap();
        *inner.by_project.entry(job.project_id.clone()).or_default() += 1;
        let key = job.func_id.clone();
        let list = inner.by_function.entry(key.clone()).or_default();
        list.push_back(job);
        if list.len() == 1 {
            inner.order.push_back(key);
        }
        drop(inner);
        self.changed.notify_one();
    }

    /// Takes the next job that is due and that `admit` accepts, visiting functions round
    /// robin: each function offers its oldest due job; a function whose job is refused (no
    /// capacity) or not due yet is skipped this round. Returns the job and what `admit`
    /// returned, or the earliest instant a retry becomes due.
    pub fn take<P>(
        &self,
        mut admit: impl FnMut(&Job) -> Option<P>,
    ) -> Result<(Job, P), Option<Instant>> {
        if self.is_closed() {
            return Err(None);
        }
        let mut inner = self.inner.lock().unwrap();
        let now = Instant::now();
        let mut next_due: Option<Instant> = None;
        for _ in 0..inner.order.len() {
            let key = inner.order.pop_front().expect("order is not empty");
            let list = inner
                .by_function
                .get_mut(&key)
                .expect("queued function has a list");
            let position = list
                .iter()
                .position(|j| j.not_before.is_none_or(|t| t <= now));
            if let Some(t) = list
                .iter()
                .filter_map(|j| j.not_before)
                .filter(|t| *t > now)
                .min()
            {
                next_due = Some(next_due.map_or(t, |n| n.min(t)));
            }
            let admitted = position.and_then(|i| admit(&list[i]).map(|permit| (i, permit)));
            match admitted {
                Some((i, permit)) => {
                    let job = list.remove(i).expect("position is valid");
                    if list.is_empty() {
                        inner.by_function.remove(&key);
                    } else {
                        inner.order.push_back(key);
                    }
                    inner.left(&job.project_id);
                    return Ok((job, permit));
                }
                None => inner.order.push_back(key),
            }
        }
        Err(next_due)
    }

    /// Removes a waiting job; returns it if it was waiting.
    pub fn cancel(&self, func_id: &str, request_id: &str) -> Option<Job> {
        let mut inner = self.inner.lock().unwrap();
        let list = inner.by_function.get_mut(func_id)?;
        let i = list.iter().position(|j| j.request_id == request_id)?;
        let job = list.remove(i)?;
        if list.is_empty() {
            inner.by_function.remove(func_id);
            inner.order.retain(|k| k != func_id);
        }
        inner.left(&job.project_id);
        Some(job)
    }

    /// Marks `job` as running; the receiver fires if it is canceled.
    pub fn start(&self, job: &Job) -> oneshot::Receiver<()> {
        let (tx, rx) = oneshot::channel();
        self.running
            .lock()
            .unwrap()
            .insert((job.func_id.clone(), job.request_id.clone()), tx);
        rx
    }

    /// Marks `job` as no longer running.
    pub fn finish(&self, job: &Job) {
        self.running
            .lock()
            .unwrap()
            .remove(&(job.func_id.clone(), job.request_id.clone()));
    }

    /// Stops a running request of function `func_id`; returns whether it was running.
    pub fn cancel_running(&self, func_id: &str, request_id: &str) -> bool {
        let key = (func_id.to_string(), request_id.to_string());
        match self.running.lock().unwrap().remove(&key) {
            Some(stop) => stop.send(()).is_ok(),
            None => false,
        }
    }

    /// Jobs waiting now.
    pub fn len(&self) -> usize {
        self.inner
            .lock()
            .unwrap()
            .by_function
            .values()
            .map(VecDeque::len)
            .sum()
    }

    /// Resolves after the next push.
    pub async fn changed(&self) {
        self.changed.notified().await
    }
}

impl Inner {
    /// Counts a job of `project_id` out of the queue.
    fn left(&mut self, project_id: &str) {
        if let Some(n) = self.by_project.get_mut(project_id) {
            *n -= 1;
            if *n == 0 {
                self.by_project.remove(project_id);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const UNBOUNDED: QueueLimits = QueueLimits {
        per_function: usize::MAX,
        per_project: usize::MAX,
    };

    fn job(func: &str, id: &str) -> Job {
        Job {
            request_id: id.into(),
            project_id: "p".into(),
            package: "default".into(),
            func_name: func.into(),
            func_id: func.into(),
            event: Bytes::new(),
            accepted_ms: 0,
            attempts: 0,
            start_retries: 0,
            not_before: None,
            depth: 0,
        }
    }

    #[test]
    fn round_robin_across_functions() {
        let q = Queue::new(UNBOUNDED);
        for id in ["a1", "a2", "a3"] {
            q.push(job("a", id));
        }
        q.push(job("b", "b1"));
        let order: Vec<String> =
            std::iter::from_fn(|| q.take(|_| Some(())).ok().map(|(j, _)| j.request_id)).collect();
        assert_eq!(order, ["a1", "b1", "a2", "a3"]);
    }

    #[test]
    fn refused_and_delayed_jobs_wait() {
        let q = Queue::new(UNBOUNDED);
        q.push(job("a", "a1"));
        let mut later = job("b", "b1");
        later.not_before = Some(Instant::now() + std::time::Duration::from_secs(60));
        q.push(later);
        assert!(matches!(
            q.take(|j| (j.func_id != "a").then_some(())),
            Err(Some(_))
        ));
        assert_eq!(q.take(|_| Some(())).unwrap().0.request_id, "a1");
        assert!(q.take(|_| Some(())).is_err());
        assert!(q.cancel("b", "b1").is_some());
        assert_eq!(q.len(), 0);
    }

    #[test]
    fn new_requests_are_bounded_per_function_and_project() {
        let q = Queue::new(QueueLimits {
            per_function: 2,
            per_project: 3,
        });
        q.push(job("a", "a1"));
        q.push(job("a", "a2"));
        assert_eq!(q.has_room("p", "a"), Err(QueueFull::Function(2)));
        assert_eq!(q.has_room("p", "b"), Ok(()));
        q.push(job("b", "b1"));
        assert_eq!(q.has_room("p", "c"), Err(QueueFull::Project(3)));
        assert_eq!(q.has_room("other", "c"), Ok(()));
        q.take(|_| Some(())).unwrap();
        assert_eq!(q.has_room("p", "c"), Ok(()));
        assert!(q.cancel("b", "b1").is_some());
        assert_eq!(q.has_room("p", "a"), Ok(()));
    }
}
