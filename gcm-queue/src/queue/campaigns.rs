//! Campaigns: the jobs one request was cut into (they share a [`Job::campaign_id`]), read
//! and acted on together.

use std::collections::BTreeMap;

use futures_util::{StreamExt as _, TryStreamExt as _};
use serde::Serialize;

use crate::error::Error;
use crate::fate::{Final, JobStatus, Record, Summary};
use crate::job::{Job, millis};

use super::{Backend, Queue};

/// The most jobs a campaign's reads cover (5 million tokens in jobs of 500): a larger
/// campaign is shown and acted on in its first jobs by id.
pub const MOST_CAMPAIGN_JOBS: usize = 10_000;

/// Jobs whose records are read at once.
const READS_IN_FLIGHT: usize = 8;

/// Where a campaign stands: its jobs, and their counts added up.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Campaign {
    /// The campaign's id.
    pub campaign_id: String,
    /// The counts of its jobs added up: `status` is the campaign's (the busiest of its
    /// jobs'), `attempts` the most any job took, `retry_at_ms` the soonest retry due,
    /// `job_id` the campaign's id.
    pub totals: Summary,
    /// Its jobs, by id (at most [`MOST_CAMPAIGN_JOBS`]).
    pub jobs: Vec<Summary>,
}

impl Campaign {
    fn new(campaign_id: String, jobs: Vec<Summary>) -> Self {
        let mut totals =
            Summary { job_id: campaign_id.clone(), campaign_id: Some(campaign_id.clone()), ..Summary::default() };
        for job in &jobs {
            for (total, count) in [
                (&mut totals.recipients, job.recipients),
                (&mut totals.delivered, job.delivered),
                (&mut totals.canonical, job.canonical),
                (&mut totals.not_registered, job.not_registered),
                (&mut totals.failed, job.failed),
                (&mut totals.given_up, job.given_up),
                (&mut totals.parked, job.parked),
                (&mut totals.cancelled, job.cancelled),
                (&mut totals.pending, job.pending),
            ] {
                *total = total.saturating_add(count);
            }
            totals.attempts = totals.attempts.max(job.attempts);
            totals.retry_at_ms = totals.retry_at_ms.into_iter().chain(job.retry_at_ms).min();
            totals.project = totals.project.take().or_else(|| job.project.clone());
        }
        totals.status = status(&jobs);
        Self { campaign_id, totals, jobs }
    }
}

/// A campaign's status: the busiest of its jobs' (sending, retrying, queued, scheduled),
/// else cancelled if any job was, else given up if any recipient was, else done.
fn status(jobs: &[Summary]) -> JobStatus {
    let busy = [JobStatus::Sending, JobStatus::Retrying, JobStatus::Queued, JobStatus::Scheduled, JobStatus::Cancelled];
    let any = |status: &JobStatus| jobs.iter().any(|job| job.status == *status);
    match busy.into_iter().find(any) {
        Some(status) => status,
        None if jobs.iter().any(|job| job.given_up > 0) => JobStatus::GivenUp,
        None => JobStatus::Done,
    }
}

/// The id of the job that sends again what attempt `attempt` of job `job_id` gave up or
/// parked: the same each time, so that re-queuing twice enqueues it once.
fn requeued_id(job_id: &str, attempt: u32) -> String {
    let id = format!("{job_id}-r{attempt}");
    if id.len() <= 128 {
        return id;
    }
    let digest = ring::digest::digest(&ring::digest::SHA256, id.as_bytes());
    digest.as_ref().iter().map(|byte| format!("{byte:02x}")).collect()
}

impl Queue {
    /// The newest `limit` campaigns (by when their first job was enqueued), each with its
    /// jobs' summaries.
    pub async fn campaigns(&self, limit: usize) -> Result<Vec<Campaign>, Error> {
        let campaigns = each_backend!(self, |_storage, results| results.campaigns(limit).await?);
        let mut read = Vec::with_capacity(campaigns.len());
        for campaign_id in campaigns {
            let jobs = each_backend!(self, |_storage, results| results
                .campaign_jobs(&campaign_id, MOST_CAMPAIGN_JOBS)
                .await?);
            read.push(Campaign::new(campaign_id, jobs));
        }
        Ok(read)
    }

    /// Campaign `campaign_id`; `None` when the queue knows none of its jobs.
    pub async fn campaign(&self, campaign_id: &str) -> Result<Option<Campaign>, Error> {
        let jobs =
            each_backend!(self, |_storage, results| results.campaign_jobs(campaign_id, MOST_CAMPAIGN_JOBS).await?);
        Ok((!jobs.is_empty()).then(|| Campaign::new(campaign_id.to_owned(), jobs)))
    }

    /// The records of `campaign`'s jobs, job by job, until `most` are read (a job is read
    /// whole): the records, and whether every job's are among them.
    pub async fn campaign_records(&self, campaign: &Campaign, most: usize) -> Result<(Vec<Record>, bool), Error> {
        // Owned ids: a closure over borrowed ones makes the stream's futures `Send` only for
        // one lifetime, and a handler needs them `Send` for all.
        let ids: Vec<String> = campaign.jobs.iter().map(|job| job.job_id.clone()).collect();
        let reads = ids.into_iter().map(|id| async move { self.job_records(&id).await });
        let mut reads = futures_util::stream::iter(reads).buffered(READS_IN_FLIGHT);
        let (mut records, mut jobs_read) = (Vec::new(), 0);
        while let Some(read) = reads.try_next().await? {
            records.extend(read);
            jobs_read += 1;
            if records.len() >= most {
                break; // the reads in flight are dropped
            }
        }
        Ok((records, jobs_read == campaign.jobs.len()))
    }

    /// Every record of job `job_id`, in the order they were written.
    pub async fn job_records(&self, job_id: &str) -> Result<Vec<Record>, Error> {
        each_backend!(self, |_storage, results| results.job_records(job_id).await)
    }

    /// Cancels every job of campaign `campaign_id` that has not finished (see
    /// [`Queue::cancel`]); `None` when the queue knows none of its jobs.
    pub async fn cancel_campaign(&self, campaign_id: &str) -> Result<Option<Campaign>, Error> {
        let Some(campaign) = self.campaign(campaign_id).await? else { return Ok(None) };
        for job in &campaign.jobs {
            if matches!(job.status, JobStatus::Queued | JobStatus::Scheduled | JobStatus::Retrying | JobStatus::Sending)
            {
                self.cancel(&job.job_id).await?;
            }
        }
        self.campaign(campaign_id).await
    }

    /// Enqueues again, in new jobs of the same campaign, the recipients of campaign
    /// `campaign_id` that were given up or parked: one job per attempt that left some,
    /// with that attempt's content. Each new job's id is derived from the attempt's, so a
    /// second call enqueues nothing twice. Returns the new jobs' ids and recipients, and
    /// the attempts whose content the queue no longer holds (pruned); `None` when the
    /// queue knows none of the campaign's jobs.
    pub async fn requeue_campaign(&self, campaign_id: &str) -> Result<Option<Requeued>, Error> {
        let Some(campaign) = self.campaign(campaign_id).await? else { return Ok(None) };
        let mut requeued = Requeued::default();
        for summary in campaign.jobs.iter().filter(|job| job.given_up > 0 || job.parked > 0) {
            let mut left: BTreeMap<u32, Vec<String>> = BTreeMap::new();
            for record in self.job_records(&summary.job_id).await? {
                if matches!(record.fate, Final::GivenUp { .. } | Final::Parked { .. }) {
                    left.entry(record.attempt).or_default().push(record.recipient);
                }
            }
            for (attempt, recipients) in left {
                let Some(sent) = self.attempt_job(summary, attempt).await? else {
                    requeued.lost.push(format!("{}/{attempt}", summary.job_id));
                    continue;
                };
                let job = Job {
                    id: requeued_id(&summary.job_id, attempt),
                    attempt: 0,
                    first_enqueued_ms: millis(std::time::SystemTime::now()),
                    campaign_id: Some(campaign_id.to_owned()),
                    payload: sent.payload.to(recipients),
                    ..sent
                };
                self.enqueue(&job).await?;
                requeued.jobs.push(RequeuedJob { recipients: job.payload.len() as u64, job_id: job.id });
            }
        }
        Ok(Some(requeued))
    }

    /// Attempt `attempt` of the job `summary` describes, as it was sent: a retry as its
    /// previous attempt scheduled it, a first attempt as it was enqueued; `None` once its
    /// payload is pruned.
    async fn attempt_job(&self, summary: &Summary, attempt: u32) -> Result<Option<Job>, Error> {
        let job_id = &summary.job_id;
        if let Some(previous) = attempt.checked_sub(1) {
            let settled = self.results().0.settled(job_id, previous).await?;
            return Ok(settled.and_then(|settled| settled.retry).map(|retry| retry.job));
        }
        let payload = self.backend.payload(job_id, 0).await?;
        Ok(payload.map(|payload| Job {
            id: job_id.clone(),
            correlation_id: summary.correlation_id.clone(),
            campaign_id: summary.campaign_id.clone(),
            project: summary.project.clone(),
            webhook: summary.webhook.clone(),
            ..Job::new(payload)
        }))
    }
}

/// What [`Queue::requeue_campaign`] enqueued.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Requeued {
    /// The new jobs (a job enqueued by an earlier call too is listed again, not enqueued
    /// twice).
    pub jobs: Vec<RequeuedJob>,
    /// The attempts (`job/attempt`) whose recipients could not be enqueued again: their
    /// content is no longer kept.
    pub lost: Vec<String>,
}

/// A job [`Queue::requeue_campaign`] enqueued.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, utoipa::ToSchema)]
pub struct RequeuedJob {
    /// Its id: the attempt's job id and `-r<attempt>`.
    pub job_id: String,
    /// The recipients it sends again.
    pub recipients: u64,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::indexing_slicing)] // a test may fail loudly

    use super::*;

    fn job(id: &str, status: JobStatus, given_up: u64) -> Summary {
        Summary {
            job_id: id.to_owned(),
            status,
            recipients: 10,
            given_up,
            delivered: 10 - given_up,
            ..Summary::default()
        }
    }

    #[test]
    fn a_campaign_adds_its_jobs_up_and_takes_the_busiest_status() {
        let campaign = Campaign::new(
            "c".to_owned(),
            vec![job("a", JobStatus::Done, 0), job("b", JobStatus::Retrying, 2), job("c", JobStatus::Queued, 0)],
        );
        assert_eq!((campaign.totals.recipients, campaign.totals.delivered, campaign.totals.given_up), (30, 28, 2));
        assert_eq!(campaign.totals.status, JobStatus::Retrying);
        let finished =
            Campaign::new("c".to_owned(), vec![job("a", JobStatus::Done, 0), job("b", JobStatus::GivenUp, 2)]);
        assert_eq!(finished.totals.status, JobStatus::GivenUp);
    }

    #[test]
    fn a_requeued_job_id_is_the_same_each_time_and_a_valid_id() {
        assert_eq!(requeued_id("01J", 2), "01J-r2");
        let long = requeued_id(&"x".repeat(128), 0);
        assert_eq!(long.len(), 64);
        assert_eq!(long, requeued_id(&"x".repeat(128), 0));
        assert_ne!(long, requeued_id(&"x".repeat(128), 1));
    }
}
