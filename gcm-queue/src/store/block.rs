//! How the SQL and Redis stores keep records: a settlement's records go in blocks of up to
//! [`RECORDS_PER_BLOCK`], one row or stream entry each, numbered in the order they are
//! written. A 1000-token settlement is then one write of one value instead of 1000 rows
//! (each with its index entry), which made the result rows most of the database's work.
//!
//! A record's cursor is its block's number times [`BLOCK_SPAN`] plus its position + 1, so
//! cursors grow along the records and a reader resumes inside a block.

use serde::{Deserialize, Serialize};

use crate::fate::{Final, Record};

/// Records per block at most.
pub(super) const RECORDS_PER_BLOCK: usize = 1000;

/// Cursors per block: more than [`RECORDS_PER_BLOCK`], a power of two to read well.
const BLOCK_SPAN: u64 = 1024;

/// A record as its block stores it: the job and the attempt are the block's.
#[derive(Serialize)]
struct Entry<'a> {
    recipient: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    correlation_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    campaign_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    project: Option<&'a str>,
    #[serde(flatten)]
    fate: &'a Final,
}

/// [`Entry`] read back.
#[derive(Deserialize)]
struct Stored {
    recipient: String,
    #[serde(default)]
    correlation_id: Option<String>,
    #[serde(default)]
    campaign_id: Option<String>,
    #[serde(default)]
    project: Option<String>,
    #[serde(flatten)]
    fate: Final,
}

/// The blocks of `records`, each a JSON array of entries.
pub(super) fn blocks(records: &[Record]) -> Result<Vec<String>, serde_json::Error> {
    records
        .chunks(RECORDS_PER_BLOCK)
        .map(|chunk| {
            let entries = chunk.iter().map(|record| Entry {
                recipient: &record.recipient,
                correlation_id: record.correlation_id.as_deref(),
                campaign_id: record.campaign_id.as_deref(),
                project: record.project.as_deref(),
                fate: &record.fate,
            });
            serde_json::to_string(&entries.collect::<Vec<_>>())
        })
        .collect()
}

/// Blocks a reader asks for at first: a page of 1000 records needs one or two of 1000. Each
/// next read asks for twice as many, up to [`MOST_BLOCKS_PER_READ`] (blocks of small jobs
/// hold a few records each).
const BLOCKS_PER_READ: usize = 4;
const MOST_BLOCKS_PER_READ: usize = 256;

/// The first block a reader after `cursor` needs, and how many of its records it has read.
fn resume(cursor: u64) -> (u64, u64) {
    (cursor / BLOCK_SPAN, cursor % BLOCK_SPAN)
}

/// A page of records being filled from blocks read in order.
pub(super) struct Page {
    resume: (u64, u64),
    limit: usize,
    /// Blocks the next read asks for.
    wanted: usize,
    /// The records read, each with its cursor.
    pub(super) records: Vec<(u64, Record)>,
}

impl Page {
    /// An empty page of at most `limit` records after `cursor`.
    pub(super) fn after(cursor: u64, limit: usize) -> Self {
        Self { resume: resume(cursor), limit, wanted: BLOCKS_PER_READ, records: Vec::new() }
    }

    /// How many blocks the next read asks for.
    pub(super) fn wanted(&self) -> usize {
        self.wanted
    }

    /// Notes that a read returned `returned` blocks: true when the store may hold more
    /// (it returned all it was asked for); the next read asks for twice as many.
    pub(super) fn fetched(&mut self, returned: usize) -> bool {
        let more = returned >= self.wanted;
        self.wanted = self.wanted.saturating_mul(2).min(MOST_BLOCKS_PER_READ);
        more
    }

    /// The block to read from: the cursor's, then the one after the last read.
    pub(super) fn next_block(&self) -> u64 {
        self.resume.0
    }

    /// True when the page holds `limit` records.
    pub(super) fn is_full(&self) -> bool {
        self.records.len() >= self.limit
    }

    /// Adds the records of block `number` (job `job_id`, attempt `attempt`) that come after
    /// the cursor, up to the limit.
    pub(super) fn add(
        &mut self,
        number: u64,
        job_id: &str,
        attempt: u32,
        block: &str,
    ) -> Result<(), serde_json::Error> {
        if self.is_full() {
            return Ok(()); // not even parsed
        }
        let (first, read) = self.resume;
        let skip = if number == first { read } else { 0 };
        let entries: Vec<Stored> = serde_json::from_str(block)?;
        for (position, entry) in (1u64..).zip(entries).skip(usize::try_from(skip).unwrap_or(usize::MAX)) {
            if self.is_full() {
                return Ok(());
            }
            let record = Record {
                job_id: job_id.to_owned(),
                attempt,
                recipient: entry.recipient,
                correlation_id: entry.correlation_id,
                campaign_id: entry.campaign_id,
                project: entry.project,
                fate: entry.fate,
            };
            self.records.push((number.saturating_mul(BLOCK_SPAN).saturating_add(position), record));
        }
        self.resume = (number.saturating_add(1), 0);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(i: usize) -> Record {
        Record {
            job_id: "job".to_owned(),
            attempt: 2,
            recipient: format!("token-{i}"),
            correlation_id: i.is_multiple_of(2).then(|| "campaign".to_owned()),
            campaign_id: i.is_multiple_of(5).then(|| "c-1".to_owned()),
            project: i.is_multiple_of(7).then(|| "shop".to_owned()),
            fate: if i.is_multiple_of(3) {
                Final::NotRegistered
            } else {
                Final::Delivered { message_id: format!("m{i}"), canonical: None }
            },
        }
    }

    /// Reads every record back through pages of `limit`, as a reader would.
    fn read_all(blocks: &[(u64, String)], limit: usize) -> Vec<(u64, Record)> {
        let (mut cursor, mut all) = (0, Vec::new());
        loop {
            let mut page = Page::after(cursor, limit);
            let first = page.next_block();
            for (number, block) in blocks.iter().filter(|(number, _)| *number >= first) {
                if page.is_full() {
                    break;
                }
                page.add(*number, "job", 2, block).unwrap();
            }
            let Some((last, _)) = page.records.last() else { return all };
            cursor = *last;
            all.extend(page.records);
        }
    }

    #[test]
    fn records_read_back_in_pages_of_any_size_are_each_read_once_in_order() {
        let records: Vec<Record> = (0..2500).map(record).collect();
        let texts = blocks(&records).unwrap();
        assert_eq!(texts.len(), 3, "blocks of at most 1000");
        // Block numbers as a store hands them out: growing, not always by one.
        let numbered: Vec<(u64, String)> = [1, 2, 7].into_iter().zip(texts).collect();
        for limit in [1, 7, 999, 1000, 1001, 5000] {
            let read = read_all(&numbered, limit);
            assert_eq!(read.iter().map(|(_, record)| record.clone()).collect::<Vec<_>>(), records, "limit {limit}");
            assert!(read.windows(2).all(|pair| pair[0].0 < pair[1].0), "cursors grow (limit {limit})");
        }
    }

    #[test]
    fn an_entry_stores_the_record_without_its_job_and_attempt() {
        let text = &blocks(&[record(2)]).unwrap()[0];
        assert_eq!(
            text,
            r#"[{"recipient":"token-2","correlation_id":"campaign","fate":"delivered","message_id":"m2"}]"#
        );
    }
}
