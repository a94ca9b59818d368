//! How an install tells its caller what it is doing: the stub's progress bar implements
//! [`Reporter`]; `verify` and tests use [`Silent`].

/// Receives the install's progress. Called from the install's threads.
pub trait Reporter: Sync {
    /// A new phase (`"installing"`, `"compiling"`) of `total` units (bytes or files).
    fn phase(&self, name: &'static str, total: u64);
    /// `amount` more units of the current phase are done.
    fn advance(&self, amount: u64);
    /// One more unit is done.
    fn step(&self) {
        self.advance(1);
    }
}

/// A reporter that shows nothing.
pub struct Silent;

impl Reporter for Silent {
    fn phase(&self, _name: &'static str, _total: u64) {}
    fn advance(&self, _amount: u64) {}
}
