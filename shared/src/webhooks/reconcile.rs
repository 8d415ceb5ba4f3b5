//! Meta's `publish` and `delete` changes applied to ThreadStorm's own record of its posts.
//!
//! `publish`: when the poster could not confirm a part (the publish answered 5xx, code 10 or timed
//! out, the container says PUBLISHED, and the post could not be found again), it left the part
//! marked uncertain under its account (`PostsStore::mark_uncertain`), with the media ids of the
//! storm's earlier parts (which Meta reports too, and which are never this part). A `publish` change for that
//! account whose media id ThreadStorm does not know yet settles it: the media id (and permalink)
//! is recorded on the part. A storm the poster is still working on is finished by the poster,
//! which uses that id on its next attempt; a storm the poster gave up on (`failed`) becomes
//! `published` once every part has a media id. The change carries no container id or text, so a
//! part is matched only when it is the account's one uncertain part of the change's media type
//! created before the post's time; anything else is left alone and logged.
//!
//! A `publish` change for a media id a part already carries records the change's permalink on
//! that part: Threads' publish answer has only the id, so this is how a published part gets its
//! permalink without another Threads call.
//!
//! `delete`: every part with that media id, on that account, is marked deleted (the storm too
//! when it is the first part).
//!
//! Both are idempotent; the route's (field, value.id) dedup keeps Meta's retries from even
//! getting here twice.

use super::delivery::{Delete, Publish};
use super::routes::threads_time;
use crate::posts::{
    AccountId, MediaType, Moved, PostsError, PostsStore, Recorded, Status, StatusName, StormId,
    Transition, UncertainPart,
};

/// A post's time may run this far ahead of the clock that stamped its container (seconds).
const CLOCK_SKEW_SECS: i64 = 300;

/// What a `publish` change did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Published {
    /// No part has this media id and the account has no uncertain part: not ThreadStorm's post.
    NothingUncertain,
    /// A part already carries this media id: the change's permalink is recorded on it, and its
    /// uncertain mark (if any) is cleared.
    AlreadyKnown,
    /// The part now has the media id; `completed` when that made a failed storm published.
    Settled {
        storm_id: StormId,
        index: usize,
        completed: bool,
    },
    /// The matching part already had another media id: left as it was.
    Conflict { storm_id: StormId, index: usize },
    /// None, or more than one, of the account's uncertain parts could be this post.
    NoSingleMatch { candidates: usize },
}

/// Applies a `publish` change for `account`.
pub async fn publish(
    posts: &PostsStore,
    account: &AccountId,
    change: &Publish,
    now: i64,
) -> Result<Published, PostsError> {
    let known = posts.parts_with_media(&change.id).await?;
    if !known.is_empty() {
        // A post ThreadStorm published: Meta's change is where its permalink comes from.
        if let Some(link) = change.permalink.as_deref() {
            for (storm_id, index) in &known {
                // Only the account's own storms, as for `delete`.
                match posts.load(storm_id).await? {
                    Some(storm) if &storm.account_id == account => {
                        posts
                            .record_permalink(storm_id, *index, &change.id, link)
                            .await?;
                    }
                    _ => {}
                }
            }
        }
        for part in posts.uncertain_parts(account, now).await? {
            if known.contains(&(part.storm_id.clone(), part.index)) {
                posts
                    .clear_uncertain(account, &part.storm_id, part.index)
                    .await?;
            }
        }
        return Ok(Published::AlreadyKnown);
    }
    let uncertain = posts.uncertain_parts(account, now).await?;
    if uncertain.is_empty() {
        return Ok(Published::NothingUncertain);
    }
    let posted_at = change.timestamp.as_deref().and_then(threads_time);
    let candidates: Vec<&UncertainPart> = uncertain
        .iter()
        .filter(|part| !part.published_before.contains(&change.id))
        .filter(|part| same_media_type(part.media_type, change.media_type.as_deref()))
        .filter(|part| posted_at.is_none_or(|at| at.saturating_add(CLOCK_SKEW_SECS) >= part.since))
        .collect();
    let [part] = candidates.as_slice() else {
        return Ok(Published::NoSingleMatch {
            candidates: candidates.len(),
        });
    };
    let recorded = posts
        .record_media(
            &part.storm_id,
            part.index,
            &change.id,
            change.permalink.as_deref(),
            now,
        )
        .await?;
    if recorded == Recorded::Refused {
        return Ok(Published::Conflict {
            storm_id: part.storm_id.clone(),
            index: part.index,
        });
    }
    posts
        .clear_uncertain(account, &part.storm_id, part.index)
        .await?;
    let completed = complete_if_whole(posts, &part.storm_id, now).await?;
    Ok(Published::Settled {
        storm_id: part.storm_id.clone(),
        index: part.index,
        completed,
    })
}

/// A storm the poster gave up on becomes published once every part has a media id. A storm
/// still `publishing` is left to the poster, which records its parts itself.
async fn complete_if_whole(posts: &PostsStore, id: &StormId, now: i64) -> Result<bool, PostsError> {
    let Some(storm) = posts.load(id).await? else {
        return Ok(false);
    };
    if storm.status.name() != StatusName::Failed || storm.parts.iter().any(|p| p.media_id.is_none())
    {
        return Ok(false);
    }
    let Some(first) = storm.parts.first() else {
        return Ok(false);
    };
    let Some(media_id) = first.media_id.clone() else {
        return Ok(false);
    };
    let to = Status::Published {
        media_id,
        permalink: first.permalink.clone(),
    };
    let moved = posts
        .transition(id, Transition::new(&[StatusName::Failed], to, now))
        .await?;
    Ok(moved == Moved::Moved)
}

/// Whether a post of Threads' read-side `media_type` can be a part of this type; an absent type
/// matches anything.
fn same_media_type(part: MediaType, threads: Option<&str>) -> bool {
    let Some(threads) = threads else {
        return true;
    };
    matches!(
        (part, threads),
        (MediaType::Text, "TEXT_POST")
            | (MediaType::Image, "IMAGE")
            | (MediaType::Video, "VIDEO")
            | (MediaType::Carousel, "CAROUSEL_ALBUM")
    )
}

/// Applies a `delete` change for `account`: the number of parts marked deleted.
pub async fn delete(
    posts: &PostsStore,
    account: &AccountId,
    change: &Delete,
    now: i64,
) -> Result<usize, PostsError> {
    let at = change
        .deleted_at
        .as_deref()
        .or(change.timestamp.as_deref())
        .and_then(threads_time)
        .unwrap_or(now);
    let mut marked = 0;
    for (id, index) in posts.parts_with_media(&change.id).await? {
        // Only the account's own storms: a media id is Threads', but the storm is ThreadStorm's.
        match posts.load(&id).await? {
            Some(storm) if &storm.account_id == account => {
                posts.mark_deleted(&id, index, at).await?;
                marked += 1;
            }
            _ => {}
        }
    }
    Ok(marked)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_types_match_threads_read_side_names() {
        assert!(same_media_type(MediaType::Text, Some("TEXT_POST")));
        assert!(same_media_type(MediaType::Carousel, Some("CAROUSEL_ALBUM")));
        assert!(same_media_type(MediaType::Video, None));
        assert!(!same_media_type(MediaType::Text, Some("IMAGE")));
        assert!(!same_media_type(MediaType::Text, Some("REPOST_FACADE")));
        assert!(!same_media_type(MediaType::Image, Some("image")));
    }
}
