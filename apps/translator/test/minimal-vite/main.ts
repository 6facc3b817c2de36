// A minimal app, as a user writes it: @kvt/backend-wasm finds its .wasm files by itself (Vite emits them), and the
// default en-es model is served beside the page.
import { activate } from '@kvt/backend-wasm';
import { translate } from '@kvt/core';
import { loadModel } from '@kvt/loaders';

await activate();
const loaded = await loadModel(new URL('models/en-es/', document.baseURI).href);
if (loaded.kind !== 'encoder-decoder') throw new Error('expected a translation model');
const { translations } = await translate(loaded.model, { text: 'Where is the train station?', tokenizer: loaded.tokenizer!, numBeams: 1 });
document.body.dataset.translation = translations[0]!.text ?? '';
