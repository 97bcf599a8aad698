//! The gateway's route table: the APIs of the ACTIVE gateway triggers, in the order a request
//! tries them.
//!
//! The gateway has one URL space for every project (as one APIG domain has; the creation of a
//! trigger whose API would serve the same requests as another's is refused, FSS.1147). A
//! request takes the most specific API that matches: NORMAL (exact) before SWA (prefix), then
//! more literal segments, more segments, no greedy parameter, and a method of its own before
//! `ANY`. The table is a short list scanned per request, rebuilt when a trigger changes.

use std::sync::{Arc, RwLock};

use crate::registry::triggers::Api;
use crate::registry::Trigger;

/// One API on the gateway and the trigger that publishes it.
#[derive(Debug)]
pub struct Route {
    pub trigger: Arc<Trigger>,
    pub api: Api,
}

/// What a request finds on the gateway.
pub enum Lookup {
    Found {
        route: Arc<Route>,
        params: Vec<(String, String)>,
    },
    /// An API has the path but not the method.
    NoMethod,
    NotFound,
}

#[derive(Default)]
pub struct Routes {
    table: RwLock<Arc<Vec<Arc<Route>>>>,
}

impl Routes {
    /// Publishes the API of `trigger` if it is ACTIVE, withdraws it otherwise.
    pub fn sync(&self, trigger: &Arc<Trigger>) {
        let route = trigger.api().filter(|_| trigger.is_active()).map(|api| {
            Arc::new(Route {
                trigger: trigger.clone(),
                api,
            })
        });
        self.rebuild(&trigger.trigger_id, route);
    }

    /// Withdraws the API of trigger `id`.
    pub fn remove(&self, id: &str) {
        self.rebuild(id, None);
    }

    fn rebuild(&self, id: &str, route: Option<Arc<Route>>) {
        let mut table = self.table.write().unwrap();
        let mut routes: Vec<Arc<Route>> = table
            .iter()
            .filter(|r| r.trigger.trigger_id != id)
            .cloned()
            .chain(route)
            .collect();
        routes.sort_by_key(|r| {
            let (literals, segments, not_greedy) = r.api.path.specificity();
            (
                r.api.prefix,
                std::cmp::Reverse((literals, segments, not_greedy)),
                r.api.method == "ANY",
            )
        });
        *table = Arc::new(routes);
    }

    /// The API serving `method` `path` (raw, without the query) and its path parameters.
    pub fn find(&self, method: &str, path: &str) -> Lookup {
        let table = self.table.read().unwrap().clone();
        let mut path_known = false;
        for route in table.iter() {
            if let Some(params) = route.api.path.matches(path, route.api.prefix) {
                if route.api.serves(method) {
                    return Lookup::Found {
                        route: route.clone(),
                        params,
                    };
                }
                path_known = true;
            }
        }
        if path_known {
            Lookup::NoMethod
        } else {
            Lookup::NotFound
        }
    }
}
