//! The operations of the official FunctionGraph SDK that fgs does not implement (yet): each
//! answers 501 `FSS.0501` naming the operation, so that a client learns it is missing rather
//! than that its function is (a bare 404) or that it used the wrong method.

use std::sync::Arc;

use axum::routing::{on, MethodFilter};
use axum::Router;

use crate::api::{ApiError, App};

/// `(method, path under /v2/{project_id}/fgs, operation)`, as `huaweicloudsdkfunctiongraph.v2`
/// names them. Path parameters are named as the implemented routes name the same segment.
const OPERATIONS: &[(&str, &str, &str)] = &[
    ("POST", "/workflows", "create_workflow"),
    ("GET", "/workflows", "list_workflow"),
    ("DELETE", "/workflows", "batch_delete_workflows"),
    ("GET", "/workflows/{workflow_id}", "show_work_flow"),
    ("PUT", "/workflows/{workflow_id}", "update_work_flow"),
    (
        "POST",
        "/workflows/{workflow_id}/callback",
        "create_callback_workflow",
    ),
    (
        "POST",
        "/workflows/{workflow_id}/executions",
        "start_workflow_execution",
    ),
    (
        "GET",
        "/workflows/{workflow_id}/executions",
        "list_workflow_executions",
    ),
    (
        "GET",
        "/workflows/{workflow_id}/executions-history",
        "show_workflow_execution_for_page",
    ),
    (
        "GET",
        "/workflows/{workflow_id}/executions/{execution_id}",
        "show_workflow_execution",
    ),
    (
        "POST",
        "/workflows/{workflow_id}/executions/{execution_id}/retry",
        "retry_work_flow",
    ),
    (
        "POST",
        "/workflows/{workflow_id}/executions/{execution_id}/terminate",
        "stop_work_flow",
    ),
    (
        "POST",
        "/workflows/{workflow_id}/sync-executions",
        "start_sync_workflow_execution",
    ),
    ("GET", "/workflow-statistic", "show_tenant_metric"),
    (
        "GET",
        "/workflow-statistic/{workflow_urn}",
        "show_work_flow_metric",
    ),
    ("POST", "/functions/{function_urn}/events", "create_event"),
    ("GET", "/functions/{function_urn}/events", "list_events"),
    (
        "GET",
        "/functions/{function_urn}/events/{event_id}",
        "show_event",
    ),
    (
        "PUT",
        "/functions/{function_urn}/events/{event_id}",
        "update_event",
    ),
    (
        "DELETE",
        "/functions/{function_urn}/events/{event_id}",
        "delete_event",
    ),
    ("GET", "/functions/{function_urn}/export", "export_function"),
    ("POST", "/functions/import", "import_function"),
    ("GET", "/functions/statistics", "list_statistics"),
    ("GET", "/function/report", "list_function_as_metric"),
    (
        "GET",
        "/functions/{function_urn}/instancereports",
        "show_func_reserved_instance_metrics",
    ),
    (
        "GET",
        "/functions/reservedinstanceconfigs",
        "list_reserved_instance_configs",
    ),
    (
        "GET",
        "/functions/{function_urn}/snapshots/{action}",
        "show_func_snapshot_state",
    ),
    (
        "POST",
        "/functions/{function_urn}/snapshots/{action}",
        "update_func_snapshot",
    ),
    (
        "PUT",
        "/functions/{function_urn}/collect/{state}",
        "update_function_collect_state",
    ),
    ("GET", "/functions/{function_urn}/tracing", "show_tracing"),
    ("PUT", "/functions/{function_urn}/tracing", "update_tracing"),
    (
        "GET",
        "/functions/{function_urn}/lts-log-detail",
        "show_lts_log_details",
    ),
    ("POST", "/functions/enable-lts-logs", "enable_lts_logs"),
    (
        "POST",
        "/functions/enable-async-status-logs",
        "enable_async_status_log",
    ),
    (
        "GET",
        "/functions/async-status-log-detail",
        "show_project_async_status_log_info",
    ),
    (
        "GET",
        "/functions/{function_urn}/servicebridge/relation",
        "list_bridge_functions",
    ),
    ("GET", "/servicebridge/version", "list_bridge_versions"),
    ("POST", "/applications", "create_function_app"),
    ("GET", "/applications", "list_function_applications"),
    ("GET", "/applications/{id}", "show_function_app"),
    ("DELETE", "/applications/{id}", "delete_function_app"),
    ("GET", "/application/templates", "list_app_templates"),
    ("GET", "/application/templates/{id}", "show_app_template"),
    ("GET", "/templates", "list_function_template"),
    ("GET", "/templates/{template_id}", "show_function_template"),
    ("POST", "/vpc-endpoint", "create_vpc_endpoint"),
    (
        "DELETE",
        "/vpc-endpoint/{vpc_id}/{subnet_id}",
        "delete_vpc_endpoint",
    ),
];

/// Adds a 501 route for every operation of [`OPERATIONS`] to `router`.
pub fn routes(mut router: Router<Arc<App>>) -> Router<Arc<App>> {
    for (method, path, operation) in OPERATIONS {
        let filter = match *method {
            "GET" => MethodFilter::GET,
            "POST" => MethodFilter::POST,
            "PUT" => MethodFilter::PUT,
            "DELETE" => MethodFilter::DELETE,
            other => unreachable!("no operation uses {other}"),
        };
        let operation: &'static str = operation;
        router = router.route(
            path,
            on(filter, move || async move {
                ApiError::not_implemented(operation)
            }),
        );
    }
    router
}
