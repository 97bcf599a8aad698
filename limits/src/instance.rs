//! Limits of one function instance, as FunctionGraph documents them; the sandboxes make the
//! kernel enforce them.

/// File descriptors per instance.
pub const MAX_OPEN_FILES: u64 = 1024;
/// Processes and threads per instance.
pub const MAX_TASKS: i64 = 1024;
/// Size of an instance's `/tmp`, bytes (512 MB).
pub const TMP_BYTES: u64 = 512 * 1024 * 1024;
