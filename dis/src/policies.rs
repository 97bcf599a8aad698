//! Stream authorization policies: a stream's owner lets principals of other projects put
//! or get its records. A principal is `project.*` (every caller of that project) or
//! `project.user` (one user, known when the host authenticates callers: `--auth required`);
//! fgs's projects stand in for DIS's domains. A caller reaches a shared stream by its
//! `stream_id` (send_records' `stream_id`, show_cursor's `stream-id`), as DIS documents.

use std::sync::Arc;

use serde::Deserialize;

use crate::error::DisError;
use crate::streams::{Dis, Stream};

/// The user an authenticated request comes from, put in the request's extensions by the
/// host's authentication layer.
#[derive(Debug, Clone)]
pub struct AuthenticatedUser(pub String);

/// Who calls: the project of the path and, when authenticated, the user.
#[derive(Debug, Clone)]
pub struct Caller {
    pub project: String,
    pub user: Option<String>,
}

/// What a policy allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Put,
    Get,
}

impl Action {
    fn name(self) -> &'static str {
        match self {
            Action::Put => "putRecords",
            Action::Get => "getRecords",
        }
    }
}

/// One rule as stored and listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub principal_name: String,
    pub action_type: String,
    pub effect: String,
}

/// The add and delete bodies.
#[derive(Debug, Deserialize)]
pub struct PolicyBody {
    pub stream_id: Option<String>,
    pub principal_name: Option<String>,
    pub action_type: Option<String>,
    pub effect: Option<String>,
}

/// The most principals one stream shares with.
pub const MAX_RULES: usize = 100;

fn principals(text: &str) -> Result<Vec<String>, DisError> {
    let names: Vec<String> = text.split(',').map(|p| p.trim().to_string()).collect();
    for name in &names {
        let valid = name.split_once('.').is_some_and(|(domain, user)| {
            let part = |s: &str, dot: bool| {
                !s.is_empty()
                    && s.len() <= 64
                    && s.bytes().all(|b| {
                        b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || (dot && b == b'.')
                    })
            };
            part(domain, false) && (user == "*" || part(user, true))
        });
        if !valid {
            return Err(DisError::Invalid(format!(
                "principal_name {name:?} is not domainName.* or domainName.userName"
            )));
        }
    }
    Ok(names)
}

impl Dis {
    /// The stream's id and rules.
    pub fn policies(
        &self,
        project_id: &str,
        stream: &str,
    ) -> Result<(String, Vec<Rule>), DisError> {
        let id = self.stream(project_id, stream)?.id.clone();
        let rules = self.catalog.policies(&id)?;
        Ok((id, rules))
    }

    /// Adds a rule per principal named (an existing one is kept).
    pub fn add_policy(
        &self,
        project_id: &str,
        stream: &str,
        body: PolicyBody,
    ) -> Result<(), DisError> {
        let id = self.checked_stream_id(project_id, stream, &body)?;
        let names = principals(body.principal_name.as_deref().unwrap_or(""))?;
        let action = match body.action_type.as_deref() {
            Some(a @ ("putRecords" | "getRecords")) => a,
            other => {
                return Err(DisError::Invalid(format!(
                    "action_type {other:?} is not putRecords or getRecords"
                )))
            }
        };
        if body.effect.as_deref().is_some_and(|e| e != "accept") {
            return Err(DisError::Invalid("effect must be accept".into()));
        }
        if self.catalog.policies(&id)?.len() + names.len() > MAX_RULES {
            return Err(DisError::Invalid(format!(
                "a stream has at most {MAX_RULES} policy rules"
            )));
        }
        for name in names {
            self.catalog.add_policy(&id, &name, action)?;
        }
        Ok(())
    }

    /// Deletes the rules of the principals named (of one action type when given).
    pub fn delete_policy(
        &self,
        project_id: &str,
        stream: &str,
        body: PolicyBody,
    ) -> Result<(), DisError> {
        let id = self.checked_stream_id(project_id, stream, &body)?;
        let names = principals(body.principal_name.as_deref().unwrap_or(""))?;
        let mut removed = 0;
        for name in names {
            removed += self
                .catalog
                .delete_policy(&id, &name, body.action_type.as_deref())?;
        }
        if removed == 0 {
            return Err(DisError::Invalid(
                "no policy rule of the stream matches".into(),
            ));
        }
        Ok(())
    }

    fn checked_stream_id(
        &self,
        project_id: &str,
        stream: &str,
        body: &PolicyBody,
    ) -> Result<String, DisError> {
        let id = self.stream(project_id, stream)?.id.clone();
        match body.stream_id.as_deref() {
            Some(given) if !given.is_empty() && given != id => Err(DisError::Invalid(format!(
                "stream_id {given:?} is not the id of stream {stream:?}"
            ))),
            _ => Ok(id),
        }
    }

    /// A stream of another project that a policy lets `caller` act on.
    pub(crate) fn shared_stream(
        &self,
        caller: &Caller,
        id: &str,
        action: Action,
    ) -> Option<Arc<Stream>> {
        let stream = self.any_stream_by_id(id)?;
        let rules = self.catalog.policies(id).ok()?;
        let granted = rules.iter().any(|r| {
            r.action_type == action.name()
                && r.principal_name
                    .split_once('.')
                    .is_some_and(|(domain, user)| {
                        domain == caller.project
                            && (user == "*" || caller.user.as_deref() == Some(user))
                    })
        });
        granted.then_some(stream)
    }

    /// A stream of the caller's project by id, or one shared with the caller.
    pub(crate) fn stream_for(
        &self,
        caller: &Caller,
        id: &str,
        action: Action,
    ) -> Option<Arc<Stream>> {
        self.stream_by_id(&caller.project, id)
            .or_else(|| self.shared_stream(caller, id, action))
    }
}
