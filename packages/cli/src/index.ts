/**
 * The `kvt` command line: `kvt generate`, `kvt translate`, `kvt bench`.
 *
 * @example
 * ```sh
 * pnpm kvt generate --model ../shared/fixtures/stories260K/stories260K.bin --prompt "Once upon a time"
 * pnpm kvt translate "Where is the train station?"
 * ```
 *
 * @packageDocumentation
 */
import { Command, CommanderError, Option } from 'commander';
import { KvtError } from '@kvt/core';
import { runGenerate } from './commands/generate.js';
import { runTranslate } from './commands/translate.js';
import { runEvaluate } from './commands/evaluate.js';
import { float, int } from './options.js';

const backendOption = () => new Option('--backend <name>', 'compute backend').choices(['cpu', 'wasm']).default('wasm');
const cacheOption = () =>
  new Option('--cache <mode>', 'KV cache: the backend\'s own, the reference concat cache, or none (recompute)').choices(['backend', 'concat', 'none']).default('backend');

export function createProgram(): Command {
  const program = new Command('kvt')
    .description('KV-cached Transformer inference on TensorFlow.js')
    .showHelpAfterError()
    .exitOverride();
  program
    .command('generate')
    .description('generate text with a decoder-only model (llama2.c .bin, GGUF, Hugging Face llama/gpt2 folder)')
    .requiredOption('--model <path>', 'model file or folder')
    .option('--tokenizer <path>', 'tokenizer file (default: found beside the model)')
    .option('--prompt <text>', 'prompt text', '')
    .option('--max-new-tokens <n>', 'most tokens to generate', int('--max-new-tokens'))
    .option('--temperature <t>', '0 = greedy (default); > 0 samples', float('--temperature'))
    .option('--top-k <k>', 'sample from the k most likely tokens', int('--top-k'))
    .option('--top-p <p>', 'nucleus sampling threshold in (0, 1]', float('--top-p'))
    .option('--min-p <p>', 'drop tokens below p × the top probability', float('--min-p'))
    .option('--repetition-penalty <r>', 'penalize repeated tokens (> 1)', float('--repetition-penalty'))
    .option('--seed <s>', 'sampling seed', int('--seed'))
    .addOption(backendOption())
    .addOption(cacheOption())
    .option('--json', 'print one JSON object on stdout')
    .action((o) => runGenerate(o));
  program
    .command('translate')
    .description('translate with an encoder-decoder model (default: the embedded English→Spanish model)')
    .argument('[text]', 'text to translate (or --text, or --input FILE)')
    .option('--model <path>', 'model folder or file (Hugging Face Marian/BART folder, CTranslate2 folder)')
    .option('--text <text>', 'text to translate')
    .option('--input <file>', 'translate a file, one sentence a line; writes one translation a line')
    .option('--beams <n>', 'beam search width (1 = greedy)', int('--beams'))
    .option('--num-return <n>', 'hypotheses to return (≤ beams)', int('--num-return'))
    .option('--max-new-tokens <n>', 'most target tokens', int('--max-new-tokens'))
    .option('--length-penalty <x>', 'beam score = log p / length^x', float('--length-penalty'))
    .option('--batch-size <n>', 'sentences per batch with --input', int('--batch-size'), 16)
    .addOption(backendOption())
    .addOption(cacheOption())
    .option('--json', 'print JSON (one object; JSON Lines with --input)')
    .action((text: string | undefined, o) => runTranslate({ ...o, text: o.text ?? text }));
  program
    .command('evaluate')
    .description('BLEU (sacreBLEU-compatible: 13a, corpus, all references) and chrF of a translation model on a TSV test set')
    .option('--model <path>', 'model folder (default: the embedded English→Spanish model)')
    .option('--dev <file>', 'source<TAB>reference lines (several lines per source for several references)', '../shared/corpora/anki-spa-eng/dev.tsv')
    .option('--beams <n>', 'beam search width', int('--beams'), 4)
    .option('--batch-size <n>', 'sentences per batch', int('--batch-size'), 32)
    .option('--max-new-tokens <n>', 'most target tokens', int('--max-new-tokens'), 64)
    .option('--limit <n>', 'only the first n sources', int('--limit'))
    .addOption(backendOption())
    .option('--json', 'print one JSON object')
    .action((o) => runEvaluate(o));
  program
    .command('bench')
    .description('run the benchmark harness (apps/bench); pass its flags after --')
    .allowUnknownOption()
    .helpOption(false)
    .argument('[args...]')
    .action(async (args: string[]) => {
      const { runBench } = (await import(new URL('../../../apps/bench/dist/main.js', import.meta.url).href)) as {
        runBench: (argv: string[]) => Promise<number>;
      };
      process.exitCode = await runBench(args);
    });
  return program;
}

/** Runs the command line; resolves to the exit code: 0 success, 2 bad usage or input, 1 anything else. */
export async function main(argv: string[]): Promise<number> {
  const program = createProgram();
  try {
    await program.parseAsync(argv);
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (e) {
    if (e instanceof CommanderError) {
      if (e.code === 'commander.helpDisplayed' || e.code === 'commander.help' || e.code === 'commander.version') return 0;
      return 2; // commander printed the usage error
    }
    if (KvtError.isInstance(e)) {
      const usage = ['INVALID_OPTION', 'INVALID_INPUT', 'TOKEN_OUT_OF_RANGE', 'PROMPT_TOO_LONG', 'MODEL_FORMAT', 'UNSUPPORTED', 'SHAPE_MISMATCH'];
      process.stderr.write(`kvt: ${e.message}\n`);
      return usage.includes(e.code) ? 2 : 1;
    }
    process.stderr.write(`kvt: ${(e as Error)?.stack ?? String(e)}\n`);
    return 1;
  }
}
