//! `fgs apply` for a manifest's DIS streams and event streams: created when missing, changed
//! where the manifest differs (a DIS stream's partitions; an event stream's definition and
//! whether it runs), deleted with `--prune` when no longer named.

use hyper::Method;
use serde_json::{json, Value};

use super::apply::{call, Action, Call};
use super::Client;
use crate::manifest::Manifest;

/// The DIS streams' actions (to run before the functions: DIS triggers read the streams), and
/// their deletions.
pub(super) async fn plan_dis_streams(
    client: &Client,
    project: &str,
    manifest: &Manifest,
) -> anyhow::Result<(Vec<Action>, Vec<Action>)> {
    let Some(streams) = &manifest.dis_streams else {
        return Ok(Default::default());
    };
    let root = format!("/v2/{project}/streams");
    let listed = client
        .json(Method::GET, &format!("{root}?limit=100"), None)
        .await?;
    let existing: Vec<String> = listed["stream_names"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|n| n.as_str().map(str::to_string))
        .collect();
    let (mut plan, mut pruned) = (Vec::new(), Vec::new());
    for (name, want) in streams {
        let what = format!("dis_stream {name}");
        if !existing.contains(name) {
            let body = json!({
                "stream_name": name,
                "partition_count": want.partitions,
                "stream_type": want.kind,
                "data_duration": want.retention_hours,
                "data_type": want.data_type,
            });
            plan.push(Action::new(
                "create",
                what,
                vec![call(Method::POST, root.clone(), Some(body))],
            ));
            continue;
        }
        let shown = client
            .json(Method::GET, &format!("{root}/{name}"), None)
            .await?;
        let fixed = [
            ("type", shown["stream_type"] == *want.kind),
            (
                "retention_hours",
                shown["retention_period"] == want.retention_hours,
            ),
            ("data_type", shown["data_type"] == *want.data_type),
        ];
        if let Some((field, _)) = fixed.iter().find(|(_, same)| !same) {
            anyhow::bail!(
                "dis_streams.{name}.{field}: a DIS stream's {field} cannot change (delete the stream, or apply with the host's value)"
            );
        }
        let partitions = shown["writable_partition_count"].as_u64().unwrap_or(0);
        if partitions == u64::from(want.partitions) {
            plan.push(Action::new("unchanged", what, vec![]));
        } else {
            let body = json!({"stream_name": name, "target_partition_count": want.partitions});
            plan.push(Action::new(
                "update",
                format!("{what} (partitions {partitions} -> {})", want.partitions),
                vec![call(Method::PUT, format!("{root}/{name}"), Some(body))],
            ));
        }
    }
    for name in existing.iter().filter(|n| !streams.contains_key(*n)) {
        pruned.push(Action::new(
            "delete",
            format!("dis_stream {name}"),
            vec![call(Method::DELETE, format!("{root}/{name}"), None)],
        ));
    }
    Ok((plan, pruned))
}

/// The event streams' actions (to run after the functions they deliver to), and their
/// deletions. A stream is the manifest's when every field the manifest gives is as the host
/// shows it (the host fills in defaults the manifest may leave out).
pub(super) async fn plan_event_streams(
    client: &Client,
    project: &str,
    manifest: &Manifest,
) -> anyhow::Result<(Vec<Action>, Vec<Action>)> {
    let Some(streams) = &manifest.event_streams else {
        return Ok(Default::default());
    };
    let root = format!("/v1/{project}/eventstreamings");
    let listed = client
        .json(Method::GET, &format!("{root}?limit=1000"), None)
        .await?;
    let existing: Vec<(String, String, String)> = listed["items"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|s| {
            let field = |k: &str| s[k].as_str().unwrap_or_default().to_string();
            (field("name"), field("id"), field("status"))
        })
        .collect();
    let (mut plan, mut pruned) = (Vec::new(), Vec::new());
    for (name, want) in streams {
        let what = format!("event_stream {name}");
        let mut body = json!({
            "name": name,
            "description": want.description.clone().unwrap_or_default(),
            "source": want.source,
            "sink": want.sink,
        });
        for (key, value) in [("rule_config", &want.rule_config), ("option", &want.option)] {
            if let Some(value) = value {
                body[key] = value.clone();
            }
        }
        let operate = |id: &str, operation: &str| {
            call(
                Method::POST,
                format!("{root}/operate/{id}"),
                Some(json!({ "operation": operation })),
            )
        };
        let Some((_, id, status)) = existing.iter().find(|(n, _, _)| n == name) else {
            let mut calls = vec![call(Method::POST, root.clone(), Some(body))];
            if want.running {
                // Its id is known only once made: in the create's answer.
                calls.push(Call::StartCreated { root: root.clone() });
            }
            plan.push(Action::new("create", what, calls));
            continue;
        };
        let shown = client
            .json(Method::GET, &format!("{root}/{id}"), None)
            .await?;
        let same = body
            .as_object()
            .expect("an object")
            .iter()
            .all(|(k, v)| contains(&shown[k], v));
        let running = status == "RUNNING";
        let mut calls = Vec::new();
        if !same {
            calls.push(call(Method::PUT, format!("{root}/{id}"), Some(body)));
        }
        if want.running && (!running || !same) {
            calls.push(operate(id, "START"));
        } else if !want.running && running {
            calls.push(operate(id, "PAUSE"));
        }
        let verb = if calls.is_empty() {
            "unchanged"
        } else {
            "update"
        };
        let detail = match (same, want.running == running) {
            (true, true) => String::new(),
            (false, _) => " (definition)".into(),
            (true, false) if want.running => " (start)".into(),
            (true, false) => " (pause)".into(),
        };
        plan.push(Action::new(verb, format!("{what}{detail}"), calls));
    }
    for (name, id, _) in existing.iter().filter(|(n, _, _)| !streams.contains_key(n)) {
        pruned.push(Action::new(
            "delete",
            format!("event_stream {name}"),
            vec![call(Method::DELETE, format!("{root}/{id}"), None)],
        ));
    }
    Ok((plan, pruned))
}

/// Whether `shown` has everything `want` has: equal scalars and arrays, and for objects each
/// of `want`'s keys contained in `shown`'s.
fn contains(shown: &Value, want: &Value) -> bool {
    match (shown, want) {
        (Value::Object(shown), Value::Object(want)) => want
            .iter()
            .all(|(k, v)| shown.get(k).is_some_and(|s| contains(s, v))),
        (shown, want) => shown == want,
    }
}
