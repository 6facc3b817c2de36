#!/usr/bin/env python3
"""Train kvt's default English->Spanish translator (a Marian-layout encoder-decoder).

Seeded and resumable. Uses Debian's PyTorch 1.13 and SentencePiece (see README.md beside this file).

  python3 train.py prepare            # filter the corpus, train the 8k SentencePiece vocabulary, encode
  python3 train.py train              # train from scratch (or --resume from the last checkpoint)
  python3 train.py train --resume
  python3 train.py eval               # greedy BLEU/chrF on dev.tsv (quick monitor; kvt's own eval is authoritative)
  python3 train.py export --out DIR   # Hugging Face Marian layout + reference outputs for kvt's tests

Checkpoints and prepared data go to runs/<run>/ (ignored by git).
"""
import argparse, json, math, os, random, re, struct, sys, time, unicodedata
from collections import Counter

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
DEFAULT_CORPUS = os.environ.get("KVT_CORPUS", os.path.join(REPO, "..", "shared", "corpora", "anki-spa-eng"))

# Architecture: 7.6M parameters, Marian (post-norm, SiLU, scaled embeddings, shared embeddings, sinusoidal positions).
CONFIG = dict(d_model=256, encoder_layers=3, decoder_layers=3, heads=4, ffn=1024, vocab_size=8000, max_positions=256)
EOS, UNK, PAD = 0, 1, 2  # SentencePiece ids; PAD also starts decoding (Marian's decoder_start_token_id)
MAX_TOKENS = 64


def log(*a):
    print(*a, flush=True)


def run_dir(args):
    d = os.path.join(HERE, "runs", args.run)
    os.makedirs(d, exist_ok=True)
    return d


def read_tsv(path):
    out = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            parts = line.rstrip("\n").split("\t")
            if len(parts) >= 2 and parts[0].strip() and parts[1].strip():
                out.append((parts[0].strip(), parts[1].strip()))
    return out


def read_dev(corpus):
    """dev.tsv: one line per (English, reference); returns [(english, [refs...])] in first-seen order."""
    refs = {}
    for en, es in read_tsv(os.path.join(corpus, "dev.tsv")):
        refs.setdefault(en, []).append(es)
    return list(refs.items())


# ---------------------------------------------------------------- prepare
def cmd_prepare(args):
    import sentencepiece as spm
    d = run_dir(args)
    train = read_tsv(os.path.join(args.corpus, "train.tsv"))
    dev = read_dev(args.corpus)
    dev_en = {en for en, _ in dev}
    dev_es = {r for _, rs in dev for r in rs}
    kept = [(en, es) for en, es in train if en not in dev_en and es not in dev_es]
    log(f"train pairs {len(train)}, kept {len(kept)} (dropped {len(train) - len(kept)} that share a side with dev)")
    text = os.path.join(d, "spm-input.txt")
    with open(text, "w", encoding="utf-8") as f:
        for en, es in kept:
            f.write(en + "\n" + es + "\n")
    spm.SentencePieceTrainer.train(
        input=text, model_prefix=os.path.join(d, "spm"), vocab_size=CONFIG["vocab_size"], model_type="unigram",
        character_coverage=1.0, normalization_rule_name="identity", remove_extra_whitespaces=True,
        eos_id=EOS, unk_id=UNK, pad_id=PAD, bos_id=-1, seed_sentencepiece_size=200000,
        input_sentence_size=0, shuffle_input_sentence=False, num_threads=2, minloglevel=1)
    sp = spm.SentencePieceProcessor(model_file=os.path.join(d, "spm.model"))
    data = []
    for en, es in kept:
        s = sp.encode(en) + [EOS]
        t = sp.encode(es) + [EOS]
        if len(s) <= MAX_TOKENS and len(t) <= MAX_TOKENS:
            data.append((s, t))
    with open(os.path.join(d, "train.json"), "w") as f:
        json.dump(data, f)
    os.remove(text)
    log(f"encoded {len(data)} pairs; mean source {sum(len(s) for s, _ in data) / len(data):.1f} tokens")


# ---------------------------------------------------------------- model (mirrors Hugging Face MarianMTModel)
def build_model():
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    c = CONFIG

    def sinusoidal(n, dim):
        # Marian: first half sin, second half cos, frequency 10000^(2i/dim), positions from 0.
        pos = torch.arange(n, dtype=torch.float64)[:, None]
        i = torch.arange(dim // 2, dtype=torch.float64)[None, :]
        angle = pos / torch.pow(10000.0, 2 * i / dim)
        return torch.cat([torch.sin(angle), torch.cos(angle)], dim=1).float()

    class Attention(nn.Module):
        def __init__(self):
            super().__init__()
            self.q_proj = nn.Linear(c["d_model"], c["d_model"])
            self.k_proj = nn.Linear(c["d_model"], c["d_model"])
            self.v_proj = nn.Linear(c["d_model"], c["d_model"])
            self.out_proj = nn.Linear(c["d_model"], c["d_model"])

        def forward(self, x, kv, mask):
            # x [B, T, D], kv [B, S, D], mask additive [B or 1, 1, T or 1, S]
            B, T, D = x.shape
            H = c["heads"]
            hd = D // H
            q = (self.q_proj(x) * hd ** -0.5).view(B, T, H, hd).transpose(1, 2)
            k = self.k_proj(kv).view(B, -1, H, hd).transpose(1, 2)
            v = self.v_proj(kv).view(B, -1, H, hd).transpose(1, 2)
            w = torch.softmax(q @ k.transpose(-1, -2) + mask, dim=-1)
            w = F.dropout(w, p=0.0, training=self.training)
            return self.out_proj((w @ v).transpose(1, 2).reshape(B, T, D))

    class EncoderLayer(nn.Module):
        def __init__(self):
            super().__init__()
            self.self_attn = Attention()
            self.self_attn_layer_norm = nn.LayerNorm(c["d_model"])
            self.fc1 = nn.Linear(c["d_model"], c["ffn"])
            self.fc2 = nn.Linear(c["ffn"], c["d_model"])
            self.final_layer_norm = nn.LayerNorm(c["d_model"])

        def forward(self, x, mask, p):
            x = self.self_attn_layer_norm(x + F.dropout(self.self_attn(x, x, mask), p, self.training))
            h = F.dropout(F.silu(self.fc1(x)), p, self.training)
            return self.final_layer_norm(x + F.dropout(self.fc2(h), p, self.training))

    class DecoderLayer(nn.Module):
        def __init__(self):
            super().__init__()
            self.self_attn = Attention()
            self.self_attn_layer_norm = nn.LayerNorm(c["d_model"])
            self.encoder_attn = Attention()
            self.encoder_attn_layer_norm = nn.LayerNorm(c["d_model"])
            self.fc1 = nn.Linear(c["d_model"], c["ffn"])
            self.fc2 = nn.Linear(c["ffn"], c["d_model"])
            self.final_layer_norm = nn.LayerNorm(c["d_model"])

        def forward(self, x, enc, self_mask, cross_mask, p):
            x = self.self_attn_layer_norm(x + F.dropout(self.self_attn(x, x, self_mask), p, self.training))
            x = self.encoder_attn_layer_norm(x + F.dropout(self.encoder_attn(x, enc, cross_mask), p, self.training))
            h = F.dropout(F.silu(self.fc1(x)), p, self.training)
            return self.final_layer_norm(x + F.dropout(self.fc2(h), p, self.training))

    class Marian(nn.Module):
        def __init__(self):
            super().__init__()
            self.shared = nn.Embedding(c["vocab_size"], c["d_model"])
            nn.init.normal_(self.shared.weight, std=c["d_model"] ** -0.5)
            self.register_buffer("positions", sinusoidal(c["max_positions"], c["d_model"]), persistent=False)
            self.encoder_layers = nn.ModuleList([EncoderLayer() for _ in range(c["encoder_layers"])])
            self.decoder_layers = nn.ModuleList([DecoderLayer() for _ in range(c["decoder_layers"])])
            self.final_logits_bias = nn.Parameter(torch.zeros(1, c["vocab_size"]))
            self.dropout = 0.1

        def embed(self, ids, offset=0):
            return self.shared(ids) * math.sqrt(c["d_model"]) + self.positions[offset:offset + ids.shape[1]]

        def encode(self, src):
            mask = torch.zeros(src.shape, dtype=torch.float32).masked_fill(src == PAD, -1e9)[:, None, None, :]
            x = F.dropout(self.embed(src), self.dropout, self.training)
            for layer in self.encoder_layers:
                x = layer(x, mask, self.dropout)
            return x, mask

        def decode(self, tgt_in, enc, cross_mask):
            T = tgt_in.shape[1]
            causal = torch.full((T, T), -1e9).triu(1)[None, None]
            x = F.dropout(self.embed(tgt_in), self.dropout, self.training)
            for layer in self.decoder_layers:
                x = layer(x, enc, causal, cross_mask, self.dropout)
            return x @ self.shared.weight.t() + self.final_logits_bias

        def forward(self, src, tgt_in):
            enc, mask = self.encode(src)
            return self.decode(tgt_in, enc, mask)

    return Marian()


def pad_batch(seqs, torch):
    n = max(len(s) for s in seqs)
    return torch.tensor([s + [PAD] * (n - len(s)) for s in seqs], dtype=torch.long)


def make_batches(data, batch_pairs, rng):
    order = sorted(range(len(data)), key=lambda i: (len(data[i][0]), rng.random()))
    batches = [order[i:i + batch_pairs] for i in range(0, len(order), batch_pairs)]
    rng.shuffle(batches)
    return batches


def lr_at(step, peak, warmup):
    step = max(step, 1)
    return peak * min(step / warmup, math.sqrt(warmup / step))


# ---------------------------------------------------------------- train
def cmd_train(args):
    import torch
    import torch.nn.functional as F
    torch.set_num_threads(1)
    d = run_dir(args)
    with open(os.path.join(d, "train.json")) as f:
        data = json.load(f)
    torch.manual_seed(args.seed)
    model = build_model()
    opt = torch.optim.Adam(model.parameters(), lr=args.lr, betas=(0.9, 0.98), eps=1e-9)
    step, epoch, pos = 0, 0, 0
    ckpt = os.path.join(d, "last.pt")
    if args.resume:
        if not os.path.exists(ckpt):
            sys.exit(f"no checkpoint at {ckpt}: run 'train' first")
        state = torch.load(ckpt)
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        step, epoch, pos = state["step"], state["epoch"], state["pos"]
        torch.set_rng_state(state["torch_rng"])
        log(f"resumed at step {step} (epoch {epoch}, batch {pos})")
    n_params = sum(p.numel() for p in model.parameters())
    log(f"model: {n_params / 1e6:.2f}M parameters; {len(data)} pairs; batch {args.batch_pairs} pairs; target {args.steps} steps")
    model.train()
    t0, tok_count, loss_sum, loss_n = time.time(), 0, 0.0, 0
    start_step = step
    while step < args.steps:
        rng = random.Random(args.seed * 1000 + epoch)
        batches = make_batches(data, args.batch_pairs, rng)
        while pos < len(batches) and step < args.steps:
            idx = batches[pos]
            pos += 1
            src = pad_batch([data[i][0] for i in idx], torch)
            tgt = pad_batch([[PAD] + data[i][1] for i in idx], torch)  # decoder input starts with PAD
            tgt_in, tgt_out = tgt[:, :-1], tgt[:, 1:]
            logits = model(src, tgt_in)
            loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), tgt_out.reshape(-1),
                                   ignore_index=PAD, label_smoothing=0.1)
            for g in opt.param_groups:
                g["lr"] = lr_at(step + 1, args.lr, args.warmup)
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            step += 1
            tok_count += int((tgt_out != PAD).sum()) + int((src != PAD).sum())
            loss_sum += float(loss)
            loss_n += 1
            if step % args.log_every == 0:
                el = time.time() - t0
                per_step = el / (step - start_step)
                left = (args.steps - step) * per_step
                log(f"step {step:6d}  epoch {epoch}  loss {loss_sum / loss_n:.3f}  lr {lr_at(step, args.lr, args.warmup):.2e}  "
                    f"{tok_count / el:,.0f} tok/s  {per_step:.2f} s/step  left {left / 60:.0f} min")
                loss_sum, loss_n = 0.0, 0
            if step % args.save_every == 0 or step == args.steps:
                save(torch, model, opt, step, epoch, pos, ckpt)
        if pos >= len(batches):
            epoch, pos = epoch + 1, 0
    save(torch, model, opt, step, epoch, pos, ckpt)
    log("done")


def save(torch, model, opt, step, epoch, pos, path):
    tmp = path + ".tmp"
    torch.save(dict(model=model.state_dict(), opt=opt.state_dict(), step=step, epoch=epoch, pos=pos,
                    torch_rng=torch.get_rng_state(), config=CONFIG), tmp)
    os.replace(tmp, path)
    if step % 2000 == 0:
        torch.save(dict(model=model.state_dict(), step=step, config=CONFIG), os.path.join(os.path.dirname(path), f"step{step}.pt"))


# ---------------------------------------------------------------- decode + BLEU (monitoring)
def load_for_inference(args, half_round=False):
    import torch
    d = run_dir(args)
    state = torch.load(os.path.join(d, args.checkpoint))
    model = build_model()
    model.load_state_dict(state["model"])
    if half_round:  # the exported weights are float16: reproduce them exactly in float32
        with torch.no_grad():
            for p in model.parameters():
                p.copy_(p.half().float())
    model.eval()
    return model, state.get("step")


def greedy(model, src_ids, max_len, torch):
    with torch.no_grad():
        src = pad_batch(src_ids, torch)
        enc, mask = model.encode(src)
        out = torch.full((len(src_ids), 1), PAD, dtype=torch.long)
        done = torch.zeros(len(src_ids), dtype=torch.bool)
        for _ in range(max_len):
            logits = model.decode(out, enc, mask)[:, -1]
            nxt = logits.argmax(-1)
            nxt = torch.where(done, torch.full_like(nxt, PAD), nxt)
            out = torch.cat([out, nxt[:, None]], 1)
            done |= nxt == EOS
            if bool(done.all()):
                break
    res = []
    for row in out.tolist():
        toks = []
        for t in row[1:]:
            if t in (EOS, PAD):
                break
            toks.append(t)
        res.append(toks)
    return res


def tok13a(s):
    s = s.replace("<skipped>", "").replace("-\n", "").replace("\n", " ")
    if "&" in s:
        s = s.replace("&quot;", '"').replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">")
    s = " " + s + " "
    s = re.sub(r"([\{-\~\[-\` -\&\(-\+\:-\@\/])", r" \1 ", s)
    s = re.sub(r"([^0-9])([\.,])", r"\1 \2 ", s)
    s = re.sub(r"([\.,])([^0-9])", r" \1 \2", s)
    s = re.sub(r"([0-9])(-)", r"\1 \2 ", s)
    return " ".join(s.split())


def corpus_bleu(hyps, refs_list):
    match, total = [0] * 4, [0] * 4
    hl, rl = 0, 0
    for h, refs in zip(hyps, refs_list):
        ht = tok13a(h).split()
        rts = [tok13a(r).split() for r in refs]
        hl += len(ht)
        rl += min((abs(len(r) - len(ht)), len(r)) for r in rts)[1]
        for n in range(1, 5):
            hc = Counter(tuple(ht[i:i + n]) for i in range(len(ht) - n + 1))
            mx = Counter()
            for r in rts:
                for g, k in Counter(tuple(r[i:i + n]) for i in range(len(r) - n + 1)).items():
                    mx[g] = max(mx[g], k)
            match[n - 1] += sum(min(k, mx[g]) for g, k in hc.items())
            total[n - 1] += max(len(ht) - n + 1, 0)
    if min(match) == 0:
        return 0.0
    lp = sum(math.log(m / t) for m, t in zip(match, total)) / 4
    bp = 1.0 if hl > rl else math.exp(1 - rl / max(hl, 1))
    return 100 * bp * math.exp(lp)


def cmd_eval(args):
    import torch
    import sentencepiece as spm
    torch.set_num_threads(1)
    d = run_dir(args)
    sp = spm.SentencePieceProcessor(model_file=os.path.join(d, "spm.model"))
    model, step = load_for_inference(args)
    dev = read_dev(args.corpus)[: args.limit]
    hyps = []
    t0 = time.time()
    for i in range(0, len(dev), 50):
        chunk = dev[i:i + 50]
        out = greedy(model, [sp.encode(en) + [EOS] for en, _ in chunk], 64, torch)
        hyps += [sp.decode(o) for o in out]
    bleu = corpus_bleu(hyps, [r for _, r in dev])
    log(f"step {step}: greedy BLEU {bleu:.1f} on {len(dev)} dev sentences ({time.time() - t0:.0f} s)")
    for (en, refs), h in list(zip(dev, hyps))[:5]:
        log(f"  {en}  ->  {h}   (ref: {refs[0]})")


# ---------------------------------------------------------------- export (Hugging Face Marian layout)
def write_safetensors(path, tensors, metadata):
    import numpy as np
    header, offset, blobs = {}, 0, []
    for name, arr in tensors.items():
        arr = np.ascontiguousarray(arr)
        dtype = {np.dtype("float16"): "F16", np.dtype("float32"): "F32"}[arr.dtype]
        b = arr.tobytes()
        header[name] = {"dtype": dtype, "shape": list(arr.shape), "data_offsets": [offset, offset + len(b)]}
        offset += len(b)
        blobs.append(b)
    header["__metadata__"] = metadata
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def tokenizer_json(sp):
    vocab = [[sp.id_to_piece(i), sp.get_score(i)] for i in range(sp.get_piece_size())]
    specials = [(EOS, "</s>"), (UNK, "<unk>"), (PAD, "<pad>")]
    for i, s in specials:
        vocab[i] = [s, 0.0]
    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": [{"id": i, "content": s, "single_word": False, "lstrip": False, "rstrip": False,
                          "normalized": False, "special": True} for i, s in specials],
        "normalizer": {"type": "Sequence", "normalizers": [
            {"type": "Strip", "strip_left": True, "strip_right": True},
            {"type": "Replace", "pattern": {"Regex": " {2,}"}, "content": " "}]},
        "pre_tokenizer": {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "always", "split": True},
        "post_processor": {"type": "TemplateProcessing",
                           "single": [{"Sequence": {"id": "A", "type_id": 0}}, {"SpecialToken": {"id": "</s>", "type_id": 0}}],
                           "pair": [{"Sequence": {"id": "A", "type_id": 0}}, {"Sequence": {"id": "B", "type_id": 0}},
                                    {"SpecialToken": {"id": "</s>", "type_id": 0}}],
                           "special_tokens": {"</s>": {"id": "</s>", "ids": [EOS], "tokens": ["</s>"]}}},
        "decoder": {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "always", "split": True},
        "model": {"type": "Unigram", "unk_id": UNK, "vocab": vocab, "byte_fallback": False},
    }


def write_marian_tokenizer_files(sp, spm_path, out):
    """The original Marian tokenizer files (source.spm, target.spm, vocab.json) beside tokenizer.json, as opus-mt ships."""
    import shutil
    for name in ("source.spm", "target.spm"):  # one shared vocabulary: both sides use the same model
        shutil.copyfile(spm_path, os.path.join(out, name))
    vocab = {sp.id_to_piece(i): i for i in range(sp.get_piece_size())}
    json.dump(vocab, open(os.path.join(out, "vocab.json"), "w", encoding="utf-8"), ensure_ascii=False, indent=0)


def write_tokenizer_reference(sp, corpus, path, limit=300):
    """SentencePiece's own ids for dev sentences (both sides), the reference for kvt's tokenizer tests."""
    dev = read_dev(corpus)[:limit]
    texts = [en for en, _ in dev] + [refs[0] for _, refs in dev]
    texts += ["  Two  spaces,   three   spaces.  ", "naïve café — 😀 Ω", "¿Qué?¡Sí!", "x", "ÁÉÍÓÚ ñ Ñ ü", "12:30, 3.14 & 100%"]
    cases = [{"text": t, "ids": sp.encode(t), "pieces": sp.encode(t, out_type=str)} for t in texts]
    json.dump({"sentencepiece": "python sentencepiece", "model": "source.spm", "cases": cases},
              open(path, "w", encoding="utf-8"), ensure_ascii=False)


def cmd_export(args):
    import torch
    import numpy as np
    import sentencepiece as spm
    torch.set_num_threads(1)
    d = run_dir(args)
    out = args.out
    os.makedirs(out, exist_ok=True)
    sp = spm.SentencePieceProcessor(model_file=os.path.join(d, "spm.model"))
    model, step = load_for_inference(args, half_round=True)
    c = CONFIG
    sd = model.state_dict()
    tensors = {"model.shared.weight": sd["shared.weight"], "final_logits_bias": sd["final_logits_bias"]}
    for side, n in (("encoder", c["encoder_layers"]), ("decoder", c["decoder_layers"])):
        for i in range(n):
            for k, v in sd.items():
                if k.startswith(f"{side}_layers.{i}."):
                    tensors[f"model.{side}.layers.{i}." + k[len(f"{side}_layers.{i}."):]] = v
    tensors = {k: v.detach().numpy().astype(np.float16) for k, v in tensors.items()}
    write_safetensors(os.path.join(out, "model.safetensors"), tensors, {"format": "pt", "step": str(step)})
    config = {
        "model_type": "marian", "architectures": ["MarianMTModel"], "d_model": c["d_model"],
        "encoder_layers": c["encoder_layers"], "decoder_layers": c["decoder_layers"],
        "encoder_attention_heads": c["heads"], "decoder_attention_heads": c["heads"],
        "encoder_ffn_dim": c["ffn"], "decoder_ffn_dim": c["ffn"], "activation_function": "swish",
        "vocab_size": c["vocab_size"], "decoder_vocab_size": c["vocab_size"], "max_position_embeddings": c["max_positions"],
        "scale_embedding": True, "normalize_before": False, "static_position_embeddings": True,
        "share_encoder_decoder_embeddings": True, "tie_word_embeddings": True,
        "pad_token_id": PAD, "eos_token_id": EOS, "decoder_start_token_id": PAD, "unk_token_id": UNK,
        "forced_eos_token_id": EOS, "torch_dtype": "float16",
    }
    json.dump(config, open(os.path.join(out, "config.json"), "w"), indent=2)
    json.dump({"decoder_start_token_id": PAD, "eos_token_id": EOS, "pad_token_id": PAD, "forced_eos_token_id": EOS,
               "bad_words_ids": [[PAD]], "num_beams": 4, "max_length": 128},
              open(os.path.join(out, "generation_config.json"), "w"), indent=2)
    json.dump(tokenizer_json(sp), open(os.path.join(out, "tokenizer.json"), "w", encoding="utf-8"), ensure_ascii=False)
    json.dump({"tokenizer_class": "MarianTokenizer", "source_lang": "en", "target_lang": "es", "model_max_length": 256,
               "eos_token": "</s>", "unk_token": "<unk>", "pad_token": "<pad>"},
              open(os.path.join(out, "tokenizer_config.json"), "w"), indent=2)
    write_marian_tokenizer_files(sp, os.path.join(d, "spm.model"), out)
    write_tokenizer_reference(sp, args.corpus, os.path.join(args.reference_out or out, "tokenizer-reference.json"))
    # Reference outputs of the training framework, for kvt's tests.
    sentences = ["Where is the train station?", "I like to read books.", "Tom is my friend.",
                 "She doesn't know what to do.", "We will go to the beach tomorrow."]
    refs = []
    with torch.no_grad():
        for s in sentences:
            src_ids = sp.encode(s) + [EOS]
            out_ids = greedy(model, [src_ids], 64, torch)[0]
            tgt_in = [PAD] + out_ids
            logits = model(torch.tensor([src_ids]), torch.tensor([tgt_in]))[0]
            refs.append({"source": s, "sourceIds": src_ids, "greedyIds": out_ids, "greedyText": sp.decode(out_ids),
                         "decoderInput": tgt_in, "logits": [[round(float(x), 5) for x in row] for row in logits[:4]]})
    json.dump({"framework": f"PyTorch {torch.__version__}", "step": step, "weights": "float16 rounded to float32",
               "cases": refs}, open(os.path.join(args.reference_out or out, "reference-outputs.json"), "w"),
              ensure_ascii=False)
    log(f"exported step {step} to {out}")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("command", choices=["prepare", "train", "eval", "export"])
    p.add_argument("--run", default="en-es")
    p.add_argument("--corpus", default=DEFAULT_CORPUS)
    p.add_argument("--seed", type=int, default=1234)
    p.add_argument("--steps", type=int, default=20000)
    p.add_argument("--batch-pairs", type=int, default=64)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--warmup", type=int, default=1000)
    p.add_argument("--log-every", type=int, default=50)
    p.add_argument("--save-every", type=int, default=250)
    p.add_argument("--resume", action="store_true")
    p.add_argument("--checkpoint", default="last.pt")
    p.add_argument("--limit", type=int, default=1000)
    p.add_argument("--out")
    p.add_argument("--reference-out")
    args = p.parse_args()
    random.seed(args.seed)
    {"prepare": cmd_prepare, "train": cmd_train, "eval": cmd_eval, "export": cmd_export}[args.command](args)


if __name__ == "__main__":
    main()
