//! The hashing threads (issue 12): a fixed set of named threads (`doorman-hash`), one per
//! CPU, each with argon2id working memory of its own, kept for the thread's life.
//!
//! tokio's blocking pool, which ran the hashing before, handed each verification to whichever
//! of its threads was idle (eleven of them during a login run) and shared the working memory
//! between them, so a verification often ran on a thread, and in memory, that last ran on the
//! other core; and the pool's threads, once lowered to [`HASHING_NICE`], stayed lower for the
//! mail worker's file writes too. Here a hashing thread does nothing else, its CPU time is
//! what the hashing costs (the bench reads it by the thread's name), and its memory stays
//! where it was last used.

use super::HASHING_NICE;
use argon2::Block;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

type Job = Box<dyn FnOnce(&mut [Block]) + Send>;

/// The sending side of the threads' queue. The threads end, and free their memory, when the
/// last clone is dropped (tests start many apps in one process).
#[derive(Clone, Debug)]
pub(super) struct HashingThreads {
    jobs: flume::Sender<Job>,
    /// How many threads have taken their working memory (for tests: never more than threads).
    #[cfg_attr(not(test), expect(dead_code, reason = "read by the tests"))]
    memory_sets: Arc<AtomicUsize>,
}

impl HashingThreads {
    /// `count` threads for working memory of `block_count` argon2 blocks each. The memory is
    /// taken at a thread's first job, so an idle server stays small.
    pub(super) fn start(count: usize, block_count: usize) -> std::io::Result<Self> {
        let (jobs, queue) = flume::unbounded::<Job>();
        let memory_sets = Arc::new(AtomicUsize::new(0));
        for _ in 0..count.max(1) {
            let (queue, memory_sets) = (queue.clone(), memory_sets.clone());
            std::thread::Builder::new().name("doorman-hash".into()).spawn(move || {
                lower_this_threads_priority();
                let mut memory: Option<WorkingMemory> = None;
                while let Ok(job) = queue.recv() {
                    let memory = memory.get_or_insert_with(|| {
                        memory_sets.fetch_add(1, Ordering::Relaxed);
                        WorkingMemory::new(block_count)
                    });
                    // A panicking job must not take the thread with it; its caller sees the
                    // result channel closed.
                    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job(memory.blocks())));
                }
            })?;
        }
        Ok(Self { jobs, memory_sets })
    }

    #[cfg(test)]
    pub(super) fn memory_sets(&self) -> usize {
        self.memory_sets.load(Ordering::Relaxed)
    }

    /// Runs `job` on the next free hashing thread with that thread's memory; `None` when the
    /// threads are gone or the job panicked. Admission (how many may wait) is the caller's.
    pub(super) async fn run<T: Send + 'static>(&self, job: impl FnOnce(&mut [Block]) -> T + Send + 'static) -> Option<T> {
        let (done, result) = tokio::sync::oneshot::channel();
        self.jobs
            .send(Box::new(move |blocks: &mut [Block]| {
                let _ = done.send(job(blocks));
            }))
            .ok()?;
        result.await.ok()
    }
}

/// Lowers the calling thread's priority to [`HASHING_NICE`]. On Linux the nice value is per
/// thread, and it stays for the thread's life: raising it back would need a privilege a server
/// should not have, and a hashing thread does nothing else.
fn lower_this_threads_priority() {
    #[cfg(target_os = "linux")]
    // SAFETY: gettid and setpriority only take and return integers. PRIO_PROCESS with a thread
    // id names that thread. A failure leaves the priority as it was, which is harmless.
    unsafe {
        let thread = libc::gettid();
        libc::setpriority(libc::PRIO_PROCESS, thread as libc::id_t, HASHING_NICE);
    }
}

/// argon2id's working memory for one thread (19 MiB at OWASP's parameters). On Linux it is
/// asked for on 2 MiB pages (transparent huge pages, `MADV_HUGEPAGE`): argon2id reads its
/// blocks in a data-dependent order over all of it, and with 4 KiB pages most of those reads
/// miss the TLB. `doorman-bench argon2-rate` (which uses this type, so the limit logins are
/// measured against is the same fast form): about 8 % less CPU per verification.
pub struct WorkingMemory {
    backing: Vec<Block>,
    start: usize,
    count: usize,
}

impl WorkingMemory {
    /// Memory for `count` blocks (`Params::block_count`). Where the kernel gives no huge pages
    /// it is plain memory, as fast as before.
    pub fn new(count: usize) -> Self {
        let pad = HUGE_PAGE / std::mem::size_of::<Block>();
        let mut backing: Vec<Block> = Vec::with_capacity(count + pad);
        // Before the first write: the kernel backs a range with huge pages as it is touched.
        let start = advise_huge_pages(&backing);
        backing.resize(start + count, Block::default());
        Self { backing, start, count }
    }

    pub fn blocks(&mut self) -> &mut [Block] {
        &mut self.backing[self.start..self.start + self.count]
    }
}

const HUGE_PAGE: usize = 2 << 20;

/// Advises huge pages from the first 2 MiB boundary inside `backing`'s allocation to its end,
/// and returns the index of the first block at or after that boundary (the blocks to use
/// start there; the capacity has a huge page's worth of blocks to spare for it).
#[cfg(target_os = "linux")]
fn advise_huge_pages(backing: &Vec<Block>) -> usize {
    let block = std::mem::size_of::<Block>();
    let address = backing.as_ptr() as usize;
    let end = address + backing.capacity() * block;
    let aligned = address.next_multiple_of(HUGE_PAGE);
    let length = end.saturating_sub(aligned) / 4096 * 4096;
    if length > 0 {
        // SAFETY: madvise with MADV_HUGEPAGE only tells the kernel how to back the range; it
        // never changes the memory's contents or validity. The range starts page-aligned and
        // lies inside the vector's allocation, which is not moved or freed here. A failure
        // (a kernel without transparent huge pages) leaves ordinary pages.
        unsafe {
            libc::madvise(aligned as *mut libc::c_void, length, libc::MADV_HUGEPAGE);
        }
    }
    (aligned - address).div_ceil(block)
}

#[cfg(not(target_os = "linux"))]
fn advise_huge_pages(_backing: &Vec<Block>) -> usize {
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn working_memory_holds_exactly_the_blocks_asked_for() {
        let mut memory = WorkingMemory::new(19456);
        let blocks = memory.blocks();
        assert_eq!(blocks.len(), 19456);
        #[cfg(target_os = "linux")]
        assert!(blocks.as_ptr() as usize % HUGE_PAGE < std::mem::size_of::<Block>(), "the blocks start at a huge page boundary");
    }

    #[tokio::test]
    async fn jobs_run_on_the_named_threads_and_a_panic_spares_the_thread() {
        let threads = HashingThreads::start(2, 8).expect("threads start");
        let name = threads.run(|blocks| (blocks.len(), std::thread::current().name().map(str::to_owned))).await;
        assert_eq!(name, Some((8, Some("doorman-hash".to_owned()))));
        // A panicking job leaves the thread alive for the next one.
        assert_eq!(threads.run(|_| -> u8 { panic!("a job panicked") }).await, None);
        assert_eq!(threads.run(|_| 7u8).await, Some(7));
    }
}
