//! What `doorman-bench` and the timing example share: the statistics of two samples.

pub mod stats;
