//! The per-instance store data: WASI, the memory limiter, and the host side of the
//! `fgs:function/types.context` resource.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use wasmtime::component::{Resource, ResourceTable};
use wasmtime::ResourceLimiter;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::bindings::fgs::function::types::{Context, Host, HostContext, LogLevel};
use super::log::LogBuffer;

/// What the context reports about the function (the same for every invocation).
#[derive(Debug, Clone)]
pub struct FunctionInfo {
    pub name: String,
    pub version: String,
    pub package: String,
    pub project_id: String,
    pub memory_mb: u32,
    pub cpu_millicores: u32,
    pub timeout_secs: u32,
    pub user_data: HashMap<String, String>,
}

/// Caps the instance's linear memories at the function's memory size, and remembers when
/// the guest asked for more (so a trap that follows is reported as the memory limit).
pub(crate) struct MemoryLimiter {
    pub max_bytes: usize,
    pub current: usize,
    pub hit: bool,
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _max: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let others = self.current.saturating_sub(current);
        if others + desired > self.max_bytes {
            self.hit = true;
            return Ok(false);
        }
        self.current = others + desired;
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _max: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 1_000_000)
    }
}

pub(crate) struct State {
    pub wasi: WasiCtx,
    pub table: ResourceTable,
    pub limiter: MemoryLimiter,
    pub function: Arc<FunctionInfo>,
    pub log: LogBuffer,
    pub request_id: String,
    pub deadline: Instant,
}

impl WasiView for State {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl Host for State {}

impl HostContext for State {
    fn request_id(&mut self, _: Resource<Context>) -> String {
        self.request_id.clone()
    }

    fn remaining_time_in_milli_seconds(&mut self, _: Resource<Context>) -> u64 {
        self.deadline
            .saturating_duration_since(Instant::now())
            .as_millis() as u64
    }

    fn running_time_in_seconds(&mut self, _: Resource<Context>) -> u32 {
        self.function.timeout_secs
    }

    fn user_data(&mut self, _: Resource<Context>, key: String) -> Option<String> {
        self.function.user_data.get(&key).cloned()
    }

    fn function_name(&mut self, _: Resource<Context>) -> String {
        self.function.name.clone()
    }

    fn version(&mut self, _: Resource<Context>) -> String {
        self.function.version.clone()
    }

    fn memory_size(&mut self, _: Resource<Context>) -> u32 {
        self.function.memory_mb
    }

    fn cpu_number(&mut self, _: Resource<Context>) -> u32 {
        self.function.cpu_millicores
    }

    fn project_id(&mut self, _: Resource<Context>) -> String {
        self.function.project_id.clone()
    }

    fn package(&mut self, _: Resource<Context>) -> String {
        self.function.package.clone()
    }

    fn log(&mut self, _: Resource<Context>, level: LogLevel, message: String) {
        let level = match level {
            LogLevel::Debug => "DEBUG",
            LogLevel::Info => "INFO",
            LogLevel::Warn => "WARN",
            LogLevel::Error => "ERROR",
        };
        let now = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.6fZ");
        self.log
            .append(format!("{now} {} {level} {message}\n", self.request_id).as_bytes());
    }

    fn drop(&mut self, _: Resource<Context>) -> wasmtime::Result<()> {
        Ok(())
    }
}
