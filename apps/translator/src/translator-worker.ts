// The translator's Web Worker: kvt's worker runtime (models, backends and generation live here, off the page's
// main thread).
import '@kvt/worker/worker';
