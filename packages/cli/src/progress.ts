import cliProgress from 'cli-progress';
import type { LoadProgress } from '@kvt/loaders';

/** A progress bar on stderr while model files load (hidden when stderr is not a terminal). */
export function loadingBar(enabled: boolean): { onProgress: (p: LoadProgress) => void; stop: () => void } {
  if (!enabled || !process.stderr.isTTY) return { onProgress: () => {}, stop: () => {} };
  const bar = new cliProgress.SingleBar(
    { format: 'loading {file} [{bar}] {percentage}% {value}/{total} MB', stream: process.stderr, hideCursor: true, clearOnComplete: true },
    cliProgress.Presets.shades_classic,
  );
  let started = false;
  let file = '';
  return {
    onProgress: (p) => {
      const total = +((p.total ?? p.loaded) / 1e6).toFixed(1);
      const value = +(p.loaded / 1e6).toFixed(1);
      if (!started || p.file !== file) {
        if (started) bar.stop();
        bar.start(total, value, { file: p.file });
        started = true;
        file = p.file;
      } else bar.update(value, { file: p.file });
    },
    stop: () => started && bar.stop(),
  };
}
