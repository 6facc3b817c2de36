/**
 * The `kvt` command line: `kvt generate`, `kvt chat`, `kvt translate`, `kvt evaluate`, `kvt quantize`, `kvt bench`.
 *
 * @example
 * ```sh
 * pnpm kvt generate --model ../shared/fixtures/stories260K/stories260K.bin --prompt "Once upon a time"
 * pnpm kvt translate "Where is the train station?"
 * ```
 *
 * @packageDocumentation
 */
import { readFileSync } from 'node:fs';
import { Command, CommanderError, Option } from 'commander';
import { GENERATION_OPTIONS, InvalidOptionError, KV_DTYPES, KvtError, UnsupportedError } from '@kvt/core';
import { WEIGHT_FORMATS } from '@kvt/kernels';
import { runChat } from './commands/chat.js';
import { runGenerate } from './commands/generate.js';
import { runTranslate } from './commands/translate.js';
import { defaultTestSet, runEvaluate } from './commands/evaluate.js';
import { runQuantize } from './commands/quantize.js';
import { addSamplingFlags, count, flagOf, float, int } from './options.js';

const VERSION = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;

const backendOption = () => new Option('--backend <name>', 'compute backend').choices(['cpu', 'wasm']).default('wasm');
const weightsOption = () =>
  new Option('--weights <format>', 'linear weights on the backend: fp32, fp16, or quantized at load to q8_0 / q4_0 / q4_k (default: as the file stores them)').choices([...WEIGHT_FORMATS]);
const kvDtypeOption = () => new Option('--kv-dtype <type>', 'how the KV cache stores keys and values (fp16, int8: wasm and cpu)').choices([...KV_DTYPES]).default('fp32');
const cacheOption = () =>
  new Option('--cache <mode>', 'KV cache: the backend\'s own, the reference concat cache, or none (recompute)').choices(['backend', 'concat', 'none']).default('backend');

export function createProgram(): Command {
  const program = new Command('kvt')
    .description('KV-cached Transformer inference on TensorFlow.js')
    .version(VERSION)
    .showHelpAfterError()
    .exitOverride();
  const generate = program
    .command('generate')
    .description('generate text with a decoder-only model (llama2.c .bin, GGUF, Hugging Face llama/gpt2 folder)')
    .option('--model <path>', 'model file or folder (required)')
    .option('--tokenizer <path>', 'tokenizer file of the same vocabulary (default: found beside the model)')
    .option('--prompt <text>', 'prompt text (- reads standard input)', '');
  addSamplingFlags(generate, 'most tokens to generate', 'stop before this text (repeatable)')
    .option('--beams <n>', 'beam search width (1 = no beam search)', count('--beams'))
    .option('--num-return <n>', 'outputs: the n best beams, or n samples sharing one prefill (with --temperature)', count('--num-return'))
    .option('--sliding-window <n>', 'keep the last n positions (and the sink tokens): generate past the model\'s positions (Llama)', count('--sliding-window'))
    .option('--sink-tokens <n>', 'with --sliding-window: first positions always kept (default 4)', int('--sink-tokens'))
    .option('--load-state <file>', 'continue a session saved with --save-state (the prompt continues its text)')
    .option('--save-state <file>', 'save the session (tokens and KV cache) after generating')
    .addOption(backendOption())
    .addOption(weightsOption())
    .addOption(cacheOption())
    .addOption(kvDtypeOption())
    .option('--json', 'print one JSON object on stdout')
    .action((o) => runGenerate(o));
  const chat = program
    .command('chat')
    .description('a session that keeps its KV cache across turns: each line of standard input continues the text, and only the new tokens are prefilled')
    .option('--model <path>', 'decoder-only model file or folder (required)')
    .option('--tokenizer <path>', 'tokenizer file of the same vocabulary (default: found beside the model)');
  addSamplingFlags(chat, 'most tokens per turn (default 64)', 'stop a turn before this text (repeatable)')
    .option('--load-state <file>', 'continue a session saved with --save-state')
    .option('--save-state <file>', 'save the session (tokens and KV cache) when the input ends')
    .addOption(backendOption())
    .addOption(weightsOption())
    .addOption(new Option('--cache <mode>', "the session's KV cache: the backend's own, or the reference concat cache").choices(['backend', 'concat']).default('backend'))
    .addOption(kvDtypeOption())
    .option('--json', 'print one JSON line per turn')
    .action((o) => runChat(o));
  program
    .command('translate')
    .description('translate with an encoder-decoder model (default: the embedded English→Spanish model)')
    .argument('[text]', 'text to translate (or --text, or --input FILE; - reads standard input)')
    .option('--model <path>', 'model folder or file (Hugging Face Marian/BART folder, CTranslate2 folder)')
    .option('--text <text>', 'text to translate (- reads standard input)')
    .option('--input <file>', 'translate a file (- for standard input), one sentence a line; writes one translation a line')
    .option('--beams <n>', "beam search width (default: the model's own setting; 1 = greedy)", count('--beams'))
    .option('--num-return <n>', 'hypotheses to return (≤ beams)', count('--num-return'))
    .option('--max-new-tokens <n>', 'most target tokens', count('--max-new-tokens'))
    .option('--length-penalty <x>', 'beam score = log p / length^x', float('--length-penalty'))
    .option('--batch-size <n>', 'sentences per batch with --input', count('--batch-size'), 16)
    .addOption(backendOption())
    .addOption(weightsOption())
    .addOption(cacheOption())
    .option('--json', 'print JSON (one object; JSON Lines with --input)')
    .action((text: string | undefined, o) => {
      if (text !== undefined && o.text !== undefined)
        throw new InvalidOptionError('--text', o.text, `either a text argument or --text, not both (got ${JSON.stringify(text)} too)`);
      return runTranslate({ ...o, text: o.text ?? text });
    });
  program
    .command('evaluate')
    .description('BLEU (sacreBLEU-compatible: 13a, corpus, all references) and chrF of a translation model on a TSV test set')
    .option('--model <path>', 'model folder (default: the embedded English→Spanish model)')
    .option('--dev <file>', `source<TAB>reference lines (several lines per source for several references; default ${defaultTestSet()})`)
    .option('--beams <n>', 'beam search width', count('--beams'), 4)
    .option('--batch-size <n>', 'sentences per batch', count('--batch-size'), 32)
    .option('--max-new-tokens <n>', 'most target tokens', count('--max-new-tokens'), 64)
    .option('--limit <n>', 'only the first n sources', count('--limit'))
    .addOption(backendOption())
    .addOption(weightsOption())
    .option('--json', 'print one JSON object')
    .action((o) => runEvaluate(o));
  program
    .command('quantize')
    .description('write a model with quantized weights: a llama2.c or GGUF Llama → GGUF; a Hugging Face folder → a folder (quantized safetensors)')
    .argument('<in>', 'model file or folder')
    .argument('<out>', 'GGUF file, or folder for a Hugging Face model')
    .addOption(new Option('--weights <format>', 'matrix format').choices([...WEIGHT_FORMATS]).makeOptionMandatory())
    .option('--tokenizer <path>', 'llama2.c tokenizer to embed (default: a tok*.bin beside the model)')
    .option('--json', 'print one JSON object')
    .action((input: string, output: string, o) => runQuantize(input, output, o));
  program
    .command('bench')
    .description('run the benchmark harness (apps/bench); pass its flags after --')
    .allowUnknownOption()
    .helpOption(false)
    .argument('[args...]')
    .action(async (args: string[]) => {
      // the harness is an app of the kvt repository, not part of the published command
      const harness = new URL('../../../apps/bench/dist/main.js', import.meta.url);
      const { runBench } = (await import(harness.href).catch(() => {
        throw new UnsupportedError(
          'kvt bench runs the benchmark harness of the kvt repository (apps/bench), which is not installed here: clone the repository and run `pnpm bench` there.',
        );
      })) as { runBench: (argv: string[]) => Promise<number> };
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
      const usage = ['INVALID_OPTION', 'INVALID_INPUT', 'TOKEN_OUT_OF_RANGE', 'PROMPT_TOO_LONG', 'MODEL_FORMAT', 'UNSUPPORTED', 'SHAPE_MISMATCH', 'RESOURCE_LIMIT', 'FILE_ACCESS', 'CACHE_STATE'];
      process.stderr.write(`kvt: ${inFlags(e.message)}\n`);
      return usage.includes(e.code) ? 2 : 1;
    }
    process.stderr.write(`kvt: ${(e as Error)?.stack ?? String(e)}\n`);
    return 1;
  }
}

/** A message about API options (`numBeams`, `maxNewTokens`), in the flags a command-line user types. */
function inFlags(message: string): string {
  return message.replace(new RegExp(`\\b(${GENERATION_OPTIONS.join('|')})\\b`, 'g'), (name) => flagOf(name));
}
