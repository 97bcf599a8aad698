//! The guest SDK of fgs's `WASM` runtime.
//!
//! ```ignore
//! struct Echo;
//!
//! impl fgs_guest::Handler for Echo {
//!     fn handle(event: Vec<u8>, ctx: &fgs_guest::Context) -> Result<Vec<u8>, fgs_guest::FunctionError> {
//!         ctx.log(fgs_guest::LogLevel::Info, "echoing");
//!         Ok(event)
//!     }
//! }
//!
//! fgs_guest::function!(Echo);
//! ```
//!
//! Build with `cargo build --release --target wasm32-wasip2`; zip the `.wasm` and create the
//! function with runtime `WASM` and handler `<file>.wasm` (e.g. `echo.wasm`).

/// Bindings generated from `sandbox/wit/function.wit`, the world fgs runs.
pub mod bindings {
    wit_bindgen::generate!({
        path: "../../../sandbox/wit",
        world: "function-handler",
        pub_export_macro: true,
        export_macro_name: "export_function",
        default_bindings_module: "fgs_guest::bindings",
    });
}

pub use bindings::fgs::function::types::{Context, FunctionError, LogLevel};

/// A FunctionGraph function.
pub trait Handler {
    /// Handles one event; what it returns is the invocation's result.
    fn handle(event: Vec<u8>, ctx: &Context) -> Result<Vec<u8>, FunctionError>;

    /// Runs once per instance before its first event (`initializer_handler`).
    fn initialize(_ctx: &Context) -> Result<(), FunctionError> {
        Ok(())
    }
}

impl FunctionError {
    /// An error of type `error_type` with `message` and no stack trace.
    pub fn new(error_type: impl Into<String>, message: impl Into<String>) -> Self {
        FunctionError { error_type: error_type.into(), error_message: message.into(), stack_trace: Vec::new() }
    }
}

/// Exports a [`Handler`] as the component's `handler` and `initializer`.
#[macro_export]
macro_rules! function {
    ($handler:ty) => {
        struct __FgsFunction;

        impl $crate::bindings::Guest for __FgsFunction {
            fn initializer(ctx: &$crate::Context) -> ::core::result::Result<(), $crate::FunctionError> {
                <$handler as $crate::Handler>::initialize(ctx)
            }

            fn handler(
                event: ::std::vec::Vec<u8>,
                ctx: &$crate::Context,
            ) -> ::core::result::Result<::std::vec::Vec<u8>, $crate::FunctionError> {
                <$handler as $crate::Handler>::handle(event, ctx)
            }
        }

        $crate::bindings::export_function!(__FgsFunction with_types_in $crate::bindings);
    };
}
