//! The local side: running handlers on a developer's machine.

pub mod init;
pub mod invoke;
pub mod report;
pub mod serve;
pub mod test;
pub mod types;
