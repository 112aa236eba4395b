//! The mapper threads: each maps the chunks it is handed with its own mapper of the chosen
//! form, and hands them back in the order it got them.

use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

use super::{CHUNKS_QUEUED, Chunk, MappedChunk, named};
use crate::engine::Engine;
use amplitude_posthog_transform::{MappingOutcome, without_person_properties};

/// The mapper threads: where chunks go in, where mapped chunks come out (one channel each,
/// so the assembler can take them back in reading order), and the threads.
pub(super) struct Mappers {
    pub(super) to: Vec<SyncSender<Chunk>>,
    pub(super) from: Vec<Receiver<MappedChunk>>,
    pub(super) threads: Vec<std::thread::JoinHandle<()>>,
}

/// Starts `count` mapper threads; with `live` (`--live-project`), events leave without their
/// person properties (MAPPING.md §8, live mode: the person records keep them).
pub(super) fn spawn(engine: &Engine, count: usize, live: bool) -> Mappers {
    let mut mappers = Mappers {
        to: Vec::with_capacity(count),
        from: Vec::with_capacity(count),
        threads: Vec::with_capacity(count),
    };
    for _ in 0..count {
        let (chunk_tx, chunk_rx) = sync_channel::<Chunk>(CHUNKS_QUEUED);
        let (mapped_tx, mapped_rx) = sync_channel::<MappedChunk>(CHUNKS_QUEUED);
        let mut mapper = engine.mapper();
        mappers.threads.push(named("migrate-map", move || {
            for chunk in chunk_rx {
                let mapped = chunk
                    .lines
                    .iter()
                    .map(|(number, line)| {
                        let mut mapped = mapper.map_read_with_identities(line, chunk.cut(*number));
                        if live && let MappingOutcome::Events(events) = &mut mapped.outcome {
                            for event in events.iter_mut() {
                                *event = without_person_properties(std::mem::take(event));
                            }
                        }
                        mapped
                    })
                    .collect();
                if mapped_tx.send(MappedChunk { chunk, mapped }).is_err() {
                    break;
                }
            }
        }));
        mappers.to.push(chunk_tx);
        mappers.from.push(mapped_rx);
    }
    mappers
}
