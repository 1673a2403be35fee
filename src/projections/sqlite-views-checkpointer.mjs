// The SQLite read-model store's WAL checkpointer, on a thread of its own. The main thread commits the
// read models with automatic checkpoints off, so a commit only appends to the WAL; this thread copies
// the WAL back into the database file (PASSIVE: it never blocks a reader or the writer) every
// `intervalMs`, and once more when told to stop. Plain JavaScript: a worker thread runs a JS file as-is,
// from src/ under vitest and from dist/ once `npm run build` has copied it there.
import { parentPort, workerData } from 'node:worker_threads';
import Database from 'better-sqlite3';

const { path, intervalMs } = workerData;
const db = new Database(path);
db.pragma('busy_timeout = 5000');

function checkpoint() {
  try {
    db.pragma('wal_checkpoint(PASSIVE)');
  } catch {
    // A busy database or a closing process: the next tick (or the main thread's close) tries again.
  }
}

const timer = setInterval(checkpoint, intervalMs);
parentPort.on('message', (message) => {
  if (message !== 'stop') return;
  clearInterval(timer);
  checkpoint();
  db.close();
  parentPort.postMessage('stopped');
  parentPort.close();
});
