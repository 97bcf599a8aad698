//! Host bindings of the `fgs:function` world (`sandbox/wit/function.wit`).

wasmtime::component::bindgen!({
    path: "wit",
    world: "function-handler",
    exports: { default: async },
});
