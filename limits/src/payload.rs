//! Size limits on code packages and invocation payloads.

use crate::LimitError;

const MB: usize = 1024 * 1024;

/// The documented size limits, in bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PayloadLimits {
    /// Sync invocation request body (6 MB).
    pub sync_request: usize,
    /// Sync invocation response body (6 MB; `RUNTIME_MAX_RESP_BODY_SIZE`).
    pub sync_response: usize,
    /// Async invocation request body (256 KB).
    pub async_request: usize,
    /// Inline code (10 KB).
    pub inline_code: usize,
    /// Zip code package uploaded through the API (50 MB).
    pub zip_package: usize,
    /// Unzipped code package (1500 MB).
    pub unzipped_package: u64,
}

impl Default for PayloadLimits {
    fn default() -> Self {
        Self {
            sync_request: 6 * MB,
            sync_response: 6 * MB,
            async_request: 256 * 1024,
            inline_code: 10 * 1024,
            zip_package: 50 * MB,
            unzipped_package: 1500 * MB as u64,
        }
    }
}

impl PayloadLimits {
    pub fn check_inline_code(&self, size: usize) -> Result<(), LimitError> {
        if size > self.inline_code {
            return Err(LimitError::InlineCodeSize {
                size,
                max: self.inline_code,
            });
        }
        Ok(())
    }

    pub fn check_zip_package(&self, size: usize) -> Result<(), LimitError> {
        if size > self.zip_package {
            return Err(LimitError::CodePackageSize {
                size,
                max: self.zip_package,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_sizes() {
        let l = PayloadLimits::default();
        assert!(l.check_inline_code(10 * 1024).is_ok());
        assert!(l.check_inline_code(10 * 1024 + 1).is_err());
        assert!(l.check_zip_package(50 * MB).is_ok());
        assert!(l.check_zip_package(50 * MB + 1).is_err());
    }
}
