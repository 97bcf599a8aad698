//! Limits on a function's definition: name, handler, memory, timeouts, description.

use crate::LimitError;

/// Memory sizes (MB) a function may be configured with: the documented steps up to 4096 MB,
/// plus 8192 and 10240 MB (the dynamic-memory sizes; the product maximum is 10 GB).
pub const MEMORY_STEPS_MB: [u32; 15] = [
    128, 256, 512, 768, 1024, 1280, 1536, 1792, 2048, 2560, 3072, 3584, 4096, 8192, 10240,
];

/// The documented bounds of a function definition, with FunctionGraph's defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionLimits {
    /// Shortest and longest execution timeout, seconds (3…259200).
    pub timeout_secs: (u32, u32),
    /// Shortest and longest initializer timeout, seconds (1…300).
    pub initializer_timeout_secs: (u32, u32),
    /// Longest function name (60).
    pub max_name_len: usize,
    /// Shortest and longest handler (3…128).
    pub handler_len: (usize, usize),
    /// Longest description (512).
    pub max_description_len: usize,
}

impl Default for FunctionLimits {
    fn default() -> Self {
        Self {
            timeout_secs: (3, 259_200),
            initializer_timeout_secs: (1, 300),
            max_name_len: 60,
            handler_len: (3, 128),
            max_description_len: 512,
        }
    }
}

/// A function's memory size in MB, one of [`MEMORY_STEPS_MB`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct MemorySize(u32);

impl MemorySize {
    /// Accepts only the documented steps.
    pub fn new(mb: i64) -> Result<Self, LimitError> {
        MEMORY_STEPS_MB
            .iter()
            .copied()
            .find(|&step| i64::from(step) == mb)
            .map(MemorySize)
            .ok_or_else(|| {
                LimitError::Memory(format!(
                    "memory_size {mb} is not one of {MEMORY_STEPS_MB:?}"
                ))
            })
    }

    pub fn mb(self) -> u32 {
        self.0
    }

    /// CPU share in millicores. FunctionGraph allocates CPU in proportion to memory:
    /// 100 millicores per 128 MB, plus the 200 millicore base shown in the function model.
    pub fn cpu_millicores(self) -> u32 {
        self.0 / 128 * 100 + 200
    }
}

/// An execution timeout in seconds, within [`FunctionLimits::timeout_secs`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeout(u32);

impl Timeout {
    pub fn new(secs: i64, limits: &FunctionLimits) -> Result<Self, LimitError> {
        let (min, max) = limits.timeout_secs;
        if secs < i64::from(min) || secs > i64::from(max) {
            return Err(LimitError::Timeout(format!(
                "timeout {secs} is outside {min}…{max} seconds"
            )));
        }
        Ok(Timeout(secs as u32))
    }

    pub fn secs(self) -> u32 {
        self.0
    }
}

/// 1–60 characters of letters, digits, `_` and `-`, starting with a letter and ending with a
/// letter or digit.
pub fn validate_func_name(name: &str, limits: &FunctionLimits) -> Result<(), LimitError> {
    let err = |why: &str| Err(LimitError::FuncName(format!("{name:?}: {why}")));
    if name.is_empty() || name.len() > limits.max_name_len {
        return err(&format!("must be 1–{} characters", limits.max_name_len));
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        return err("may contain only letters, digits, '_' and '-'");
    }
    if !name.starts_with(|c: char| c.is_ascii_alphabetic()) {
        return err("must start with a letter");
    }
    if !name.ends_with(|c: char| c.is_ascii_alphanumeric()) {
        return err("must end with a letter or digit");
    }
    Ok(())
}

/// `file.function`: 3–128 characters containing a `.`, naming a file at the top of the code
/// package. The file part becomes a path under the code root (inline code is written there, a
/// WASM handler is opened there), so separators, `..` and a leading `.` are refused here, before
/// any path is built from it.
pub fn validate_handler(handler: &str, limits: &FunctionLimits) -> Result<(), LimitError> {
    check_entry_point(handler, limits)
        .map_err(|why| LimitError::Handler(format!("{handler:?}: {why}")))
}

/// The initializer handler has the handler's form; its timeout is 1–300 s and required.
pub fn validate_initializer(
    handler: &str,
    timeout_secs: Option<i64>,
    limits: &FunctionLimits,
) -> Result<(), LimitError> {
    check_entry_point(handler, limits)
        .map_err(|why| LimitError::Initializer(format!("{handler:?}: {why}")))?;
    let (min, max) = limits.initializer_timeout_secs;
    match timeout_secs {
        Some(t) if t >= i64::from(min) && t <= i64::from(max) => Ok(()),
        Some(t) => Err(LimitError::InitializerTimeout(format!(
            "initializer_timeout {t} is outside {min}…{max} seconds"
        ))),
        None => Err(LimitError::InitializerTimeout(
            "initializer_timeout is required when initializer_handler is set".into(),
        )),
    }
}

fn check_entry_point(handler: &str, limits: &FunctionLimits) -> Result<(), String> {
    let (min, max) = limits.handler_len;
    if handler.len() < min || handler.len() > max {
        return Err(format!("must be {min}–{max} characters"));
    }
    let Some((file, func)) = handler.rsplit_once('.') else {
        return Err("must have the form file.function".into());
    };
    if file.is_empty() || func.is_empty() {
        return Err("must have the form file.function".into());
    }
    if handler.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err("must not contain whitespace".into());
    }
    if handler.contains(['/', '\\']) || handler.contains("..") || handler.starts_with('.') {
        return Err(
            "must name a file of the code package: no '/', '\\', '..' or leading '.'".into(),
        );
    }
    Ok(())
}

/// A package (function group): 1–64 letters, digits, `_` and `-`, starting with a letter.
pub fn validate_package(package: &str) -> Result<(), LimitError> {
    let ok = !package.is_empty()
        && package.len() <= 64
        && package.starts_with(|c: char| c.is_ascii_alphabetic())
        && package
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if ok {
        Ok(())
    } else {
        Err(LimitError::Package(format!(
            "{package:?}: must be 1–64 letters, digits, '_' or '-', starting with a letter"
        )))
    }
}

pub fn validate_description(description: &str, limits: &FunctionLimits) -> Result<(), LimitError> {
    let len = description.chars().count();
    if len > limits.max_description_len {
        return Err(LimitError::Description {
            len,
            max: limits.max_description_len,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_accepts_only_documented_steps() {
        assert_eq!(MemorySize::new(128).unwrap().mb(), 128);
        assert_eq!(MemorySize::new(10240).unwrap().mb(), 10240);
        for bad in [0, 64, 129, 5000, 4097, 10241, -128] {
            assert!(
                matches!(MemorySize::new(bad), Err(LimitError::Memory(_))),
                "{bad}"
            );
        }
        assert_eq!(MemorySize::new(128).unwrap().cpu_millicores(), 300);
    }

    #[test]
    fn timeout_bounds() {
        let l = FunctionLimits::default();
        assert!(Timeout::new(3, &l).is_ok());
        assert!(Timeout::new(259_200, &l).is_ok());
        assert!(Timeout::new(2, &l).is_err());
        assert!(Timeout::new(259_201, &l).is_err());
    }

    #[test]
    fn names() {
        let l = FunctionLimits::default();
        for good in ["a", "hello-world_1", &"a".repeat(60)] {
            assert!(validate_func_name(good, &l).is_ok(), "{good}");
        }
        for bad in ["", "1abc", "abc-", "a b", "ab.c", &"a".repeat(61), "_x"] {
            assert!(validate_func_name(bad, &l).is_err(), "{bad}");
        }
    }

    #[test]
    fn handlers_and_initializers() {
        let l = FunctionLimits::default();
        assert!(validate_handler("index.handler", &l).is_ok());
        for bad in [
            "index",
            ".h",
            "i.",
            "ab",
            "a b.c",
            "../../../runtimes/bootstrap.handler",
            "lib/index.handler",
            "/etc/passwd.x",
            "a\\b.c",
            "..wasm",
            "a..b.handler",
            ".hidden.handler",
            "a\0b.c",
        ] {
            assert!(validate_handler(bad, &l).is_err(), "{bad}");
        }
        assert!(validate_initializer("index.init", Some(3), &l).is_ok());
        assert!(matches!(
            validate_initializer("index.init", None, &l),
            Err(LimitError::InitializerTimeout(_))
        ));
        assert!(matches!(
            validate_initializer("index.init", Some(301), &l),
            Err(LimitError::InitializerTimeout(_))
        ));
        assert!(matches!(
            validate_initializer("init", Some(3), &l),
            Err(LimitError::Initializer(_))
        ));
        assert!(matches!(
            validate_initializer("../x.init", Some(3), &l),
            Err(LimitError::Initializer(_))
        ));
    }
}
