//! Auto-split one long text into storm parts of at most 500 UTF-8 bytes each.
//!
//! Cuts are made at the strongest boundary that does the job: between paragraphs (a blank line),
//! then between sentences (Unicode sentence segmentation), then at spaces, then between Unicode
//! word segments (how CJK text without spaces gets cut), then between grapheme clusters — never
//! inside a grapheme cluster (emoji ZWJ sequences, flags, combining marks) and never inside
//! anything that looks like a link. Only a piece too long for one part is cut more finely, and
//! the pieces are then packed greedily: each part takes as many as fit, so a part may end one
//! paragraph and begin the next.
//!
//! Parts are slices of the original: the text inside a part is kept byte for byte (line breaks,
//! double spaces); only the whitespace at a cut is dropped. Parts are never empty and never start
//! or end with whitespace.
//!
//! Numbering, when asked for, is a suffix ` k/n` (a space, the part number, `/`, the count) on
//! every part of a split that needs more than one part, e.g. `… the end. 3/12`. It counts toward
//! the limit: every part keeps room for the widest suffix (` 12/12`), and if the count gains a
//! digit (9 parts with room for ` 9/9`, 10 once the room is taken) the text is split again with
//! the wider reserve.

use std::ops::Range;

use unicode_segmentation::UnicodeSegmentation;

use crate::policy::{Rejection, TEXT_LIMIT_BYTES, links::url_spans};

/// Whether parts carry a ` k/n` suffix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Numbering {
    #[default]
    None,
    /// ` k/n` at the end of every part, when there is more than one.
    Suffix,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SplitOptions {
    /// The most UTF-8 bytes a part may hold, numbering included.
    pub limit_bytes: usize,
    pub numbering: Numbering,
}

impl Default for SplitOptions {
    /// Threads' 500 bytes, no numbering.
    fn default() -> Self {
        SplitOptions {
            limit_bytes: TEXT_LIMIT_BYTES,
            numbering: Numbering::None,
        }
    }
}

impl SplitOptions {
    /// Threads' 500 bytes, numbered ` k/n`.
    pub fn numbered() -> Self {
        SplitOptions {
            numbering: Numbering::Suffix,
            ..Self::default()
        }
    }
}

/// Splits `text` into parts of at most `options.limit_bytes` bytes.
///
/// A text that fits is returned whole (trimmed), without a number. Refused: a text with nothing
/// but whitespace ([`Rejection::Empty`]), a link longer than a part can hold
/// ([`Rejection::UnsplittableLink`]), a single grapheme cluster longer than a part can hold
/// ([`Rejection::UnsplittableCharacter`]).
pub fn split(text: &str, options: SplitOptions) -> Result<Vec<String>, Rejection> {
    let doc = Doc::new(text);
    let whole = doc.trim(0..text.len());
    if whole.is_empty() {
        return Err(Rejection::Empty { part: 1 });
    }
    if whole.len() <= options.limit_bytes {
        return Ok(vec![text[whole].to_owned()]);
    }
    let slices = |ranges: Vec<Range<usize>>| ranges.into_iter().map(|r| &text[r]);
    match options.numbering {
        Numbering::None => Ok(slices(doc.pack(whole, options.limit_bytes)?)
            .map(str::to_owned)
            .collect()),
        Numbering::Suffix => {
            // Each round either fits the count's width or widens the reserve, so this ends
            // within a few rounds (the count has at most 20 digits).
            let mut digits = 1;
            loop {
                let budget = options.limit_bytes.saturating_sub(suffix_width(digits));
                let ranges = doc.pack(whole.clone(), budget)?;
                let count = ranges.len();
                if decimal_digits(count) <= digits {
                    return Ok(slices(ranges)
                        .enumerate()
                        .map(|(i, part)| format!("{part} {}/{count}", i + 1))
                        .collect());
                }
                digits = decimal_digits(count);
            }
        }
    }
}

/// The bytes of the widest ` k/n` when n has `digits` digits.
fn suffix_width(digits: usize) -> usize {
    2 + 2 * digits
}

fn decimal_digits(n: usize) -> usize {
    n.checked_ilog10().map_or(1, |d| d as usize + 1)
}

/// Where a text may be cut, strongest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Level {
    Paragraph,
    Sentence,
    Space,
    Word,
    Grapheme,
}

const LEVELS: [Level; 5] = [
    Level::Paragraph,
    Level::Sentence,
    Level::Space,
    Level::Word,
    Level::Grapheme,
];

/// The text with what every level needs: its grapheme boundaries and its link spans.
struct Doc<'a> {
    text: &'a str,
    /// Every grapheme cluster boundary, 0 and the end included, ascending.
    boundaries: Vec<usize>,
    /// Link spans, ascending and disjoint.
    links: Vec<Range<usize>>,
}

impl<'a> Doc<'a> {
    fn new(text: &'a str) -> Self {
        let boundaries = text
            .grapheme_indices(true)
            .map(|(i, _)| i)
            .chain(std::iter::once(text.len()))
            .collect();
        Doc {
            text,
            boundaries,
            links: url_spans(text),
        }
    }

    /// `whole` cut into parts of at most `budget` bytes.
    fn pack(&self, whole: Range<usize>, budget: usize) -> Result<Vec<Range<usize>>, Rejection> {
        let mut pieces = Vec::new();
        self.pieces(whole, 0, budget, &mut pieces)?;
        let mut parts: Vec<Range<usize>> = Vec::new();
        for piece in pieces {
            match parts.last_mut() {
                Some(part) if piece.end - part.start <= budget => part.end = piece.end,
                _ => parts.push(piece),
            }
        }
        Ok(parts)
    }

    /// Pushes `range` if it fits, else its pieces at `LEVELS[depth]`, each cut finer in turn.
    fn pieces(
        &self,
        range: Range<usize>,
        depth: usize,
        budget: usize,
        out: &mut Vec<Range<usize>>,
    ) -> Result<(), Rejection> {
        if range.len() <= budget {
            out.push(range);
            return Ok(());
        }
        let Some(&level) = LEVELS.get(depth) else {
            return Err(self.unsplittable(range, budget));
        };
        let cuts = self.cuts(&range, level);
        let edges = std::iter::once(range.start)
            .chain(cuts)
            .chain(std::iter::once(range.end));
        let mut start = range.start;
        for end in edges.skip(1) {
            let piece = self.trim(start..end);
            start = end;
            if !piece.is_empty() {
                self.pieces(piece, depth + 1, budget, out)?;
            }
        }
        Ok(())
    }

    /// Positions strictly inside `range` where `level` allows a cut, ascending.
    fn cuts(&self, range: &Range<usize>, level: Level) -> Vec<usize> {
        let base = range.start;
        let slice = &self.text[range.clone()];
        let candidates: Vec<usize> = match level {
            Level::Paragraph => self
                .gaps(range)
                .into_iter()
                .filter(|gap| line_breaks(&self.text[gap.clone()]) >= 2)
                .flat_map(|gap| [gap.start, gap.end])
                .collect(),
            Level::Sentence => slice
                .split_sentence_bound_indices()
                .map(|(i, _)| base + i)
                .collect(),
            Level::Space => self
                .gaps(range)
                .into_iter()
                .flat_map(|gap| [gap.start, gap.end])
                .collect(),
            Level::Word => slice
                .split_word_bound_indices()
                .map(|(i, _)| base + i)
                .collect(),
            Level::Grapheme => self.boundaries_in(range).to_vec(),
        };
        candidates
            .into_iter()
            .filter(|&p| range.start < p && p < range.end && self.can_cut(p))
            .collect()
    }

    fn can_cut(&self, p: usize) -> bool {
        let on_grapheme = self.boundaries.binary_search(&p).is_ok();
        // The first link ending after p is the only one that can contain it.
        let first = self.links.partition_point(|link| link.end <= p);
        let in_link = self.links.get(first).is_some_and(|link| link.start < p);
        on_grapheme && !in_link
    }

    /// Grapheme boundaries within `range`, both ends included.
    fn boundaries_in(&self, range: &Range<usize>) -> &[usize] {
        let from = self.boundaries.partition_point(|&b| b < range.start);
        let to = self.boundaries.partition_point(|&b| b <= range.end);
        self.boundaries.get(from..to).unwrap_or_default()
    }

    /// Grapheme clusters within `range`.
    fn graphemes_in(&self, range: &Range<usize>) -> impl DoubleEndedIterator<Item = Range<usize>> {
        self.boundaries_in(range).windows(2).map(|w| w[0]..w[1])
    }

    fn is_space(&self, grapheme: &Range<usize>) -> bool {
        self.text[grapheme.clone()].chars().all(char::is_whitespace)
    }

    /// Maximal runs of whitespace graphemes within `range`.
    fn gaps(&self, range: &Range<usize>) -> Vec<Range<usize>> {
        let mut gaps: Vec<Range<usize>> = Vec::new();
        for g in self.graphemes_in(range).filter(|g| self.is_space(g)) {
            match gaps.last_mut() {
                Some(gap) if gap.end == g.start => gap.end = g.end,
                _ => gaps.push(g),
            }
        }
        gaps
    }

    /// `range` without whitespace graphemes at either end (empty if that is all it holds).
    fn trim(&self, range: Range<usize>) -> Range<usize> {
        let mut graphemes = self.graphemes_in(&range);
        let Some(first) = graphemes.find(|g| !self.is_space(g)) else {
            return range.start..range.start;
        };
        let last = graphemes
            .rfind(|g| !self.is_space(g))
            .unwrap_or(first.clone());
        first.start..last.end
    }

    /// Why `range`, which no level may cut, cannot be a part.
    fn unsplittable(&self, range: Range<usize>, budget: usize) -> Rejection {
        let link = self
            .links
            .iter()
            .find(|link| link.start < range.end && range.start < link.end);
        match link {
            Some(link) => Rejection::UnsplittableLink {
                link: self.text[link.clone()].to_owned(),
                bytes: range.len(),
                limit: budget,
            },
            None => Rejection::UnsplittableCharacter {
                bytes: range.len(),
                limit: budget,
            },
        }
    }
}

/// Line breaks in a run of whitespace: CR LF counts once, a paragraph separator twice.
fn line_breaks(gap: &str) -> usize {
    let mut count = 0;
    let mut chars = gap.chars().peekable();
    while let Some(c) = chars.next() {
        count += match c {
            '\r' if chars.peek() == Some(&'\n') => 0,
            '\n' | '\r' | '\u{0B}' | '\u{0C}' | '\u{85}' | '\u{2028}' => 1,
            '\u{2029}' => 2,
            _ => 0,
        };
    }
    count
}

#[cfg(test)]
mod tests;
