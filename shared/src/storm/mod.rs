//! Storms: chains of posts, each a reply to the one before. This module turns one long text into
//! parts Threads will take; the content policy checks the parts, and the pipeline publishes them.

pub mod split;

pub use split::{Numbering, SplitOptions, split};
