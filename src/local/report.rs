//! Lambda's platform lines around an invocation (`START`, `END`, `REPORT`) and its
//! request ids, shared by `lure invoke` and `lure serve` so both print the same.

use std::fmt;
use std::time::Duration;

/// `START RequestId: … Version: $LATEST`
pub fn start_line(request_id: &str, version: &str) -> String {
    format!("START RequestId: {request_id} Version: {version}")
}

/// `END RequestId: …`
pub fn end_line(request_id: &str) -> String {
    format!("END RequestId: {request_id}")
}

/// The `REPORT` line; `Display` writes it without a trailing newline.
#[derive(Debug, Clone)]
pub struct Report<'a> {
    pub request_id: &'a str,
    pub duration: Duration,
    pub memory_size_mb: u64,
    /// Peak resident memory of the process, when known.
    pub max_memory_used_mb: Option<u64>,
    /// Only on the first invocation an environment serves.
    pub init_duration: Option<Duration>,
    /// `Status: timeout`, `Status: error\tError Type: …`: only when it did not end well.
    pub status: Option<String>,
}

impl fmt::Display for Report<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        // Lambda bills whole milliseconds, the init phase included (as it has done
        // for every runtime since August 2025, and always did for custom runtimes).
        let billed = (self.duration + self.init_duration.unwrap_or_default())
            .as_micros()
            .div_ceil(1000)
            .max(1);
        write!(
            f,
            "REPORT RequestId: {}\tDuration: {:.2} ms\tBilled Duration: {billed} ms\tMemory Size: {} MB",
            self.request_id,
            ms(self.duration),
            self.memory_size_mb,
        )?;
        if let Some(used) = self.max_memory_used_mb {
            write!(f, "\tMax Memory Used: {used} MB")?;
        }
        if let Some(init) = self.init_duration {
            write!(f, "\tInit Duration: {:.2} ms", ms(init))?;
        }
        if let Some(status) = &self.status {
            write!(f, "\t{status}")?;
        }
        Ok(())
    }
}

/// Peak resident memory (`VmHWM`) of process `pid` (`"self"` for this one), in MB
/// rounded up; `None` where `/proc` does not say (another OS, an exited process).
pub fn max_memory_used_mb(pid: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kb: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kb.div_ceil(1024))
}

/// A random UUID v4, as Lambda's request ids are.
pub fn new_request_id() -> String {
    crate::stdlib::uuid::v4()
}

/// `n` random bytes in hex: the random parts of Lambda's trace ids and log streams.
pub fn random_hex(n: usize) -> String {
    crate::stdlib::hex::encode(&crate::stdlib::crypto::random_bytes(n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_lines_look_like_lambdas() {
        let mut report = Report {
            request_id: "r-1",
            duration: Duration::from_micros(1_234_560),
            memory_size_mb: 128,
            max_memory_used_mb: Some(21),
            init_duration: None,
            status: None,
        };
        assert_eq!(
            report.to_string(),
            "REPORT RequestId: r-1\tDuration: 1234.56 ms\tBilled Duration: 1235 ms\tMemory Size: 128 MB\tMax Memory Used: 21 MB"
        );
        report.init_duration = Some(Duration::from_micros(10_500));
        report.status = Some("Status: timeout".into());
        assert_eq!(
            report.to_string(),
            "REPORT RequestId: r-1\tDuration: 1234.56 ms\tBilled Duration: 1246 ms\tMemory Size: 128 MB\tMax Memory Used: 21 MB\tInit Duration: 10.50 ms\tStatus: timeout"
        );
        assert_eq!(
            start_line("r-1", "$LATEST"),
            "START RequestId: r-1 Version: $LATEST"
        );
        assert_eq!(end_line("r-1"), "END RequestId: r-1");
    }

    #[test]
    fn request_ids_are_uuid_v4() {
        let id = new_request_id();
        assert_eq!(id.len(), 36);
        assert_eq!(&id[14..15], "4");
        assert_ne!(id, new_request_id());
    }

    #[test]
    fn this_process_has_a_peak_memory() {
        if cfg!(target_os = "linux") {
            assert!(max_memory_used_mb("self").unwrap() > 0);
        }
    }
}
