//! When a supervised run of Vector is over, decided from what the supervisor sees at each
//! look — Vector's checkpoints, its internal metrics, the sidecar's outbox — and nothing else,
//! so the decision is tested on simulated looks.
//!
//! - **Finished**: every export file checkpointed to its end, nothing waiting in either HTTP
//!   sink and the sidecar's outbox empty, with nothing changed over two looks in a row (the
//!   last acknowledgements are in).
//! - **Stuck**: some file short of its end while nothing at all moves — no checkpoint, no
//!   metric, nothing waiting in a sink, the outbox empty — for the stall limit. Vector then
//!   has nothing left to deliver that could move the checkpoint, so waiting longer is waiting
//!   for ever (docs/ARCHITECTURE.md: a line Vector discards delivers nothing, so it moves no
//!   checkpoint). While PostHog or the sidecar makes Vector retry, events are waiting, and that
//!   is a pause, not a stall.

use std::time::Duration;

use super::file_source::{ExportFiles, Positions, Unfinished};
use super::metrics::VectorMetrics;

/// What the supervisor sees at one look.
#[derive(Debug, Clone, Copy)]
pub(super) struct Look<'a> {
    /// When, since the supervisor started watching.
    pub at: Duration,
    /// Vector's checkpoint positions.
    pub positions: &'a Positions,
    /// Vector's internal metrics.
    pub metrics: &'a VectorMetrics,
    /// Whether the sidecar's outbox is empty.
    pub sidecar_idle: bool,
}

/// What the looks so far say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Verdict<'a> {
    /// Vector is still at work, or may be.
    Running,
    /// Everything is read and delivered.
    Finished,
    /// These files cannot be read to their end: nothing has moved for the stall limit.
    Stuck(Vec<Unfinished<'a>>),
}

/// The looks so far, as far as the end is concerned.
#[derive(Debug)]
pub(super) struct EndWatch {
    /// How long nothing may move with a file short of its end before the run is stuck.
    stall_limit: Duration,
    /// The previous look's positions and metrics.
    last: Option<(Positions, VectorMetrics)>,
    /// Looks in a row at the end with nothing changed.
    settled: u32,
    /// Since when nothing has moved while a file is short of its end.
    still_since: Option<Duration>,
}

impl EndWatch {
    pub fn new(stall_limit: Duration) -> EndWatch {
        EndWatch {
            stall_limit,
            last: None,
            settled: 0,
            still_since: None,
        }
    }

    /// Takes one more look at Vector reading `files`.
    pub fn look<'f>(&mut self, files: &'f ExportFiles, look: Look) -> Verdict<'f> {
        let unchanged = self.last.as_ref().is_some_and(|(positions, metrics)| {
            positions == look.positions && metrics == look.metrics
        });
        self.last = Some((look.positions.clone(), look.metrics.clone()));
        let idle = look.metrics.waiting == 0.0 && look.sidecar_idle;
        let read = files.done(look.positions) == files.count();
        if read && idle && unchanged {
            self.settled += 1;
        } else {
            self.settled = 0;
        }
        if self.settled >= 2 {
            return Verdict::Finished;
        }
        if read || !idle || !unchanged {
            self.still_since = None;
            return Verdict::Running;
        }
        let since = *self.still_since.get_or_insert(look.at);
        if look.at.saturating_sub(since) >= self.stall_limit {
            return Verdict::Stuck(files.unfinished(look.positions));
        }
        Verdict::Running
    }
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use super::*;
    use crate::vector::file_source::ExportFile;

    const LIMIT: Duration = Duration::from_secs(60);

    /// Two export files: `a` of 100 bytes to read, `b` of 50.
    fn files() -> ExportFiles {
        ExportFiles::from_files([
            (
                (1, 10),
                ExportFile {
                    path: PathBuf::from("/export/a.json.gz"),
                    end: 100,
                },
            ),
            (
                (1, 11),
                ExportFile {
                    path: PathBuf::from("/export/b.json.gz"),
                    end: 50,
                },
            ),
        ])
    }

    fn positions(a: u64, b: u64) -> Positions {
        Positions::from([((1, 10), a), ((1, 11), b)])
    }

    fn metrics(rows: f64, delivered: f64, waiting: f64) -> VectorMetrics {
        VectorMetrics {
            rows,
            delivered,
            waiting,
            refused_key: None,
        }
    }

    /// The verdicts of looks half a second apart, as (positions, metrics, sidecar idle).
    fn verdicts<'f>(
        files: &'f ExportFiles,
        looks: &[(Positions, VectorMetrics, bool)],
    ) -> Vec<Verdict<'f>> {
        let mut watch = EndWatch::new(LIMIT);
        looks
            .iter()
            .enumerate()
            .map(|(index, (positions, metrics, sidecar_idle))| {
                watch.look(
                    files,
                    Look {
                        at: Duration::from_millis(500 * index as u64),
                        positions,
                        metrics,
                        sidecar_idle: *sidecar_idle,
                    },
                )
            })
            .collect()
    }

    /// `seconds` of looks, every half second, all alike.
    fn still(
        seconds: u64,
        look: (Positions, VectorMetrics, bool),
    ) -> Vec<(Positions, VectorMetrics, bool)> {
        vec![look; (seconds * 2) as usize]
    }

    #[test]
    fn every_file_at_its_end_and_nothing_waiting_twice_in_a_row_is_the_end() {
        let files = files();
        let looks = [
            (positions(40, 0), metrics(4.0, 3.0, 1.0), true),
            (positions(100, 50), metrics(10.0, 10.0, 0.0), true),
            (positions(100, 50), metrics(10.0, 10.0, 0.0), true),
            (positions(100, 50), metrics(10.0, 10.0, 0.0), true),
        ];
        assert_eq!(
            verdicts(&files, &looks),
            [
                Verdict::Running,
                Verdict::Running,
                Verdict::Running,
                Verdict::Finished
            ]
        );
    }

    #[test]
    fn the_sidecar_still_sending_or_a_sink_still_holding_events_is_not_the_end() {
        let files = files();
        let mut looks = still(5, (positions(100, 50), metrics(10.0, 10.0, 0.0), false));
        looks.extend(still(
            5,
            (positions(100, 50), metrics(10.0, 9.0, 1.0), true),
        ));
        assert!(
            verdicts(&files, &looks)
                .iter()
                .all(|verdict| *verdict == Verdict::Running)
        );
    }

    #[test]
    fn a_file_whose_checkpoint_never_reaches_its_end_while_vector_is_idle_is_stuck() {
        let files = files();
        // `b` is read; `a` stays at 60 of its 100 bytes, and Vector has nothing in flight.
        let mut looks = vec![(positions(20, 0), metrics(2.0, 1.0, 1.0), true)];
        looks.extend(still(61, (positions(60, 50), metrics(8.0, 8.0, 0.0), true)));
        let verdicts = verdicts(&files, &looks);
        let first_stuck = verdicts
            .iter()
            .position(|verdict| matches!(verdict, Verdict::Stuck(_)))
            .expect("stuck in the end");
        // Still from the second look (0.5 s), so stuck 60 s later, not before.
        assert_eq!(first_stuck, 2 + 120);
        assert_eq!(
            verdicts[first_stuck],
            Verdict::Stuck(vec![Unfinished {
                path: Path::new("/export/a.json.gz"),
                position: 60,
                end: 100
            }])
        );
    }

    #[test]
    fn a_file_without_any_checkpoint_is_stuck_at_zero() {
        let files = files();
        let looks = still(
            61,
            (
                Positions::from([((1, 11), 50)]),
                metrics(3.0, 3.0, 0.0),
                true,
            ),
        );
        let last = verdicts(&files, &looks).pop().expect("looks");
        assert_eq!(
            last,
            Verdict::Stuck(vec![Unfinished {
                path: Path::new("/export/a.json.gz"),
                position: 0,
                end: 100
            }])
        );
    }

    #[test]
    fn any_movement_restarts_the_stall_clock() {
        let files = files();
        // 50 s still, one checkpoint moves, 50 s still again: never a full minute still.
        let mut looks = still(50, (positions(60, 50), metrics(8.0, 8.0, 0.0), true));
        looks.extend(still(50, (positions(70, 50), metrics(8.0, 8.0, 0.0), true)));
        // The same with a metric moving (rows read, events sent) instead of a checkpoint.
        looks.extend(still(50, (positions(70, 50), metrics(9.0, 8.0, 0.0), true)));
        // And events waiting in a sink (PostHog answering 503) for two minutes.
        looks.extend(still(
            120,
            (positions(70, 50), metrics(9.0, 8.0, 3.0), true),
        ));
        assert!(
            verdicts(&files, &looks)
                .iter()
                .all(|verdict| *verdict == Verdict::Running)
        );
    }

    #[test]
    fn a_file_with_nothing_vector_can_read_is_at_its_end_from_the_start() {
        // A file whose one row is too long for Vector: its end is 0, so no checkpoint is due.
        let files = ExportFiles::from_files([(
            (1, 12),
            ExportFile {
                path: PathBuf::from("/export/too-long.json.gz"),
                end: 0,
            },
        )]);
        let looks = still(2, (Positions::new(), metrics(0.0, 0.0, 0.0), true));
        assert_eq!(
            verdicts(&files, &looks)[..3],
            [Verdict::Running, Verdict::Running, Verdict::Finished]
        );
    }
}
