//! Storms and their DynamoDB store. A single post is a one-part storm of kind `post`; every stage
//! of the pipeline reads the storm from here (the source of truth), never from its message.

mod item;
mod model;
mod store;
pub mod view;

pub use item::Corrupt;
pub use model::{
    AccountId, CarouselChild, InvalidStormId, MAX_PARTS, MediaType, Part, PartContent, Reason,
    Status, StatusName, Storm, StormId, StormKind,
};
pub use store::{
    Created, Cursor, DueStorm, ListAfter, Moved, PartOutcome, PostsError, PostsStore, Recorded,
    StormSummary, Transition, UNCERTAIN_KEPT_SECS, UncertainPart,
};
