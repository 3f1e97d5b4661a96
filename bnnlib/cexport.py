"""A packed network as one dependency-free C99 file: ``python -m bnnlib export-c model.bnn -o model.c``.

The file holds the packed weights and integer thresholds as constant arrays and defines

    int bnn_predict(const unsigned char pixels[INPUT_SIZE]);   /* the class, 0 .. classes − 1 */

(no ``main``: a device's program calls it). It needs only ``<stdint.h>``, ``<string.h>`` and
``<math.h>`` (``expf``; link with ``-lm``), and computes what :class:`bnnlib.deploy.PackedNetwork`
computes, in portable C:

* block 1: a = Σ(2p − 255)·s = 2·Σp·s + 255·(n − 2·#(+1)), the byte dot product Σp·s over ±1
  bytes that the first call expands from the weight bits (fan_out × fan_in bytes of static
  memory), four units at a time: the loop a compiler vectorises into the processor's dot-product
  instructions (VNNI's vpdpbusd at ``-O3 -march=native``). With ``-DBNN_COMPACT`` (a small device)
  only the bits: the pixels' 4-bit groups give the 16 sums of their subsets (a table built once
  per image), and S = Σ of the pixels whose weight bit is set is one look-up per 4 weight bits,
  a = 4·S − 2·Σp + 255·(n − 2·#(+1));
* blocks 2–4: a = n − 2·popcount(w XOR x) over 64-bit words of bits, four units at a time;
* the integer thresholds (mode, T) exactly as the packed file's, as dir·a ≥ bound (no branch);
* the output layer: float32 sums of ±w in input order, tanh as bnnlib computes it —
  2·σ(2z) − 1 = 2/(1 + e^(−2z)) − 1 in float32 (:func:`bnnlib.binarize.tanh`) — and the first
  largest value, as ``argmax`` (saturated values tie at 1.0, and the first class wins).

What it cannot reproduce bit for bit is the reference's float32 GEMM (its summation order) and
its ``exp`` (SLEEF's, within 1 ulp of the C library's): where two classes' outputs are within
rounding of each other, the C engine may pick the other one. The compiled kernel
(:mod:`bnnlib.binary`) hands those images to the reference engine; a standalone file has none to
hand them to. Measured: it never happens on the committed models (120 models × 10 000 test images, all
identical), nor on a network built to saturate its outputs (3 000 random images, nearly all
with ties at 1.0; tests/test_cexport.py).

Weights are stored bit j of a row in word j / 64, bit j % 64 (little or big endian alike).
``tests/test_cexport.py`` compiles the file with the system's ``cc`` beside a driver and finds
its predictions identical to the packed engine's on the full MNIST and Fashion-MNIST test sets.
"""

from __future__ import annotations

from pathlib import Path
from typing import List, Union

import numpy as np

from .deploy import ABOVE, BELOW, MINUS, PLUS, PackedNetwork


def _words(signs: np.ndarray) -> np.ndarray:
    """(rows, fan_in) bool → (rows, ceil(fan_in / 64)) uint64, bit j in word j // 64 at j % 64."""
    rows, fan_in = signs.shape
    padded = np.zeros((rows, (fan_in + 63) // 64 * 64), dtype=np.uint8)
    padded[:, :fan_in] = signs
    little = np.packbits(padded, axis=1, bitorder="little")  # bit j at byte j // 8, bit j % 8
    return little.view("<u8").astype(np.uint64)


def _thresholds(modes: np.ndarray, limits: np.ndarray, rows: int) -> tuple:
    """The packed file's (mode, T) per unit as (dir, bound): the unit fires when dir·a ≥ bound —
    above: (1, T); below: a ≤ T ⟺ −a ≥ −T, (−1, −T); always: (0, −1); never: (0, 1). One multiply
    and one comparison, the same outputs for every integer a. Padded to ``rows`` units that never fire."""
    modes = np.concatenate([np.asarray(modes), np.full(rows - len(modes), MINUS, dtype=np.asarray(modes).dtype)])
    limits = np.concatenate([np.asarray(limits), np.zeros(rows - len(limits), dtype=np.asarray(limits).dtype)])
    limits = np.asarray(limits, dtype=np.int64)
    direction = np.select([modes == ABOVE, modes == BELOW], [1, -1], 0).astype(np.int8)
    bound = np.select([modes == ABOVE, modes == BELOW, modes == PLUS, modes == MINUS], [limits, -limits, -1, 1])
    assert np.isin(modes, (ABOVE, BELOW, PLUS, MINUS)).all() and np.abs(bound).max(initial=0) < 2 ** 31
    return direction, bound.astype(np.int32)


def _array(ctype: str, name: str, values, per_line: int, fmt) -> str:
    values = list(values)
    lines = [", ".join(fmt(v) for v in values[i:i + per_line]) for i in range(0, len(values), per_line)]
    return f"static const {ctype} {name}[{len(values)}] = {{\n    " + ",\n    ".join(lines) + "\n};\n"


def source(network: PackedNetwork, name: str = "model") -> str:
    """The C99 source of ``network``."""
    header = network.header
    sizes = [header["input_size"], *header["hidden_sizes"], header["n_classes"]]
    n_hidden = len(header["hidden_sizes"])
    words = [(s + 63) // 64 for s in sizes[:-1]]
    about = header.get("run_id", "unknown run")
    config = header.get("config", {})
    out: List[str] = [
        f"/* {name}: a packed fully binary MLP {'-'.join(map(str, sizes))} as dependency-free C99, written by\n"
        f"   python -m bnnlib export-c (bnnlib/cexport.py). Run {about}"
        + (f": {config.get('algorithm')}, {config.get('dataset')}, BN {'on' if header.get('batch_norm') else 'off'}"
           if config else "") + ".\n"
        f"   int bnn_predict(const unsigned char pixels[{sizes[0]}]) returns the class 0-{sizes[-1] - 1}.\n"
        "   Link with -lm (expf). The first call expands block 1's weight bits to bytes in static memory\n"
        "   (call it once before calling from several threads); -DBNN_COMPACT keeps only the bits and\n"
        "   no state at all, for small devices (slower). */\n",
        "#include <math.h>\n#include <stdint.h>\n#include <string.h>\n\n",
        f"#define BNN_INPUT_SIZE {sizes[0]}\n#define BNN_CLASSES {sizes[-1]}\n",
        "#if defined(__GNUC__) || defined(__clang__)\n#define bnn_popcount(x) __builtin_popcountll(x)\n#else\n"
        "static int bnn_popcount(uint64_t x) {\n"
        "    x = x - ((x >> 1) & 0x5555555555555555ULL);\n"
        "    x = (x & 0x3333333333333333ULL) + ((x >> 2) & 0x3333333333333333ULL);\n"
        "    x = (x + (x >> 4)) & 0x0F0F0F0F0F0F0F0FULL;\n"
        "    return (int)((x * 0x0101010101010101ULL) >> 56);\n}\n#endif\n\n",
    ]
    for k, layer in enumerate(network.layers):
        fan_out, fan_in = layer.signs.shape
        w = np.zeros(((fan_out + 3) // 4 * 4, words[k]), dtype=np.uint64)  # whole groups of 4 rows
        w[:fan_out] = _words(layer.signs)
        direction, bound = _thresholds(layer.modes, layer.limits, len(w))
        out.append(f"/* block {k + 1}: {fan_in} -> {fan_out}, row u's bit j is +1 weight (word j/64, bit j%64);\n"
                   f"   zero rows to a multiple of 4; unit u fires when DIR{k + 1}[u] * a >= BOUND{k + 1}[u] */\n")
        out.append(_array("uint64_t", f"W{k + 1}", w.reshape(-1), 4, lambda v: f"0x{int(v):016x}ULL"))
        out.append(_array("int8_t", f"DIR{k + 1}", direction, 24, lambda v: str(int(v))))
        out.append(_array("int32_t", f"BOUND{k + 1}", bound, 12, lambda v: str(int(v))))
        if k == 0:
            ones = layer.signs.sum(axis=1).astype(np.int64)
            offset = np.zeros(len(w), dtype=np.int64)
            offset[:fan_out] = 255 * (fan_in - 2 * ones)
            out.append(_array("int32_t", "OFFSET1", offset, 12, lambda v: str(int(v))))
    out.append(f"/* output layer: {sizes[-2]} x {sizes[-1]} float32, row-major */\n")
    out.append(_array("float", "OUT", network.output.reshape(-1), 6, lambda v: float(v).hex() + "f"))
    out.append("""
/* a unit's output bit, without a branch: its sign is as unpredictable as a coin, and a branch
   on it would miss half the time */
#define BNN_FIRES(dir, bound, a) ((uint64_t)((dir) * (a) >= (bound)))

/* four units at a time: four independent sums instead of one chain of dependent additions */
static void bnn_hidden(const uint64_t *w, const int8_t *dir, const int32_t *bound, int fan_in, int words,
                       int fan_out, const uint64_t *x, uint64_t *y) {
    int u, k, j;
    uint64_t bits = 0;  /* the current 64 units' outputs, stored once they are complete */
    for (u = 0; u < fan_out; u += 4) {
        const uint64_t *w0 = w + (long)u * words;
        int32_t c[4] = {0, 0, 0, 0};
        for (k = 0; k < words; k++) {
            c[0] += bnn_popcount(w0[k] ^ x[k]);
            c[1] += bnn_popcount(w0[words + k] ^ x[k]);
            c[2] += bnn_popcount(w0[2 * words + k] ^ x[k]);
            c[3] += bnn_popcount(w0[3 * words + k] ^ x[k]);
        }
        for (j = 0; j < 4; j++) bits |= BNN_FIRES(dir[u + j], bound[u + j], fan_in - 2 * c[j]) << ((u + j) & 63);
        if (((u + 4) & 63) == 0 || u + 4 >= fan_out) {
            y[u >> 6] = bits;
            bits = 0;
        }
    }
}

""")
    n_groups = (sizes[0] + 3) // 4
    buf = max(words[1:] + [1]) if n_hidden > 1 else 1
    buf = max(buf, (sizes[n_hidden] + 63) // 64)
    rows4 = (sizes[1] + 3) // 4 * 4
    out.append(f"""#ifndef BNN_COMPACT
/* block 1's weights as +-1 bytes, expanded from W1 by the first call ({sizes[1]} x {sizes[0]} bytes of
   static memory): a byte dot product is what compilers vectorise (e.g. VNNI's vpdpbusd,
   pmaddubsw + pmaddwd, NEON's sdot), ~20x the table of subset sums. A small device defines
   BNN_COMPACT and keeps only the bits (the table, no extra memory). */
static int8_t S1[{rows4}][{64 * words[0]}];  /* zero-padded to whole 64-pixel chunks and 4 units */
static volatile int s1_ready = 0;

static void bnn_expand(void) {{
    int u, i;
    for (u = 0; u < {sizes[1]}; u++)
        for (i = 0; i < {sizes[0]}; i++) S1[u][i] = (int8_t)(((W1[(long)u * {words[0]} + (i >> 6)] >> (i & 63)) & 1) ? 1 : -1);
    s1_ready = 1;
}}
#endif

""")
    body = [f"int bnn_predict(const unsigned char pixels[{sizes[0]}]) {{",
            "#ifdef BNN_COMPACT",
            f"    int32_t table[{n_groups}][16];  /* per 4 pixels, the sums of their 16 subsets */",
            "#endif",
            f"    uint64_t x[{buf}], y[{buf}];",
            f"    float z[{sizes[-1]}];",
            "    int u, i, j, best;",
            f"    for (i = 0; i < {buf}; i++) x[i] = y[i] = 0;",
            "#ifndef BNN_COMPACT",
            "    /* block 1: a = sum (2p - 255) s = 2 sum p s + 255 (n - 2 #(+1)) */",
            f"    unsigned char padded[{64 * words[0]}];  /* the pixels, then zeros to a whole 64-pixel chunk */",
            "    uint64_t bits = 0;  /* the current 64 units' outputs, stored once they are complete */",
            "    if (!s1_ready) bnn_expand();",
            f"    memcpy(padded, pixels, {sizes[0]});",
            f"    memset(padded + {sizes[0]}, 0, {64 * words[0] - sizes[0]});",
            "    /* four units at a time: four independent sums, so a vectorised loop is not one chain of",
            "       dependent additions (a quarter of the time where the compiler vectorises) */",
            f"    for (u = 0; u < {sizes[1]}; u += 4) {{",
            "        const int8_t *s0 = S1[u], *s1 = S1[u + 1], *s2 = S1[u + 2], *s3 = S1[u + 3];",
            "        int32_t d[4] = {0, 0, 0, 0};",
            f"        for (i = 0; i < {64 * words[0]}; i++) {{",
            "            int32_t p = padded[i];",
            "            d[0] += p * s0[i]; d[1] += p * s1[i]; d[2] += p * s2[i]; d[3] += p * s3[i];",
            "        }",
            "        for (j = 0; j < 4; j++) bits |= BNN_FIRES(DIR1[u + j], BOUND1[u + j], 2 * d[j] + OFFSET1[u + j]) << ((u + j) & 63);",
            f"        if (((u + 4) & 63) == 0 || u + 4 >= {sizes[1]}) {{",
            "            x[u >> 6] = bits;",
            "            bits = 0;",
            "        }",
            "    }",
            "#else",
            "    int32_t total = 0;",
            "    int g;",
            f"    for (g = 0; g < {n_groups}; g++) {{",
            "        int32_t p[4] = {0, 0, 0, 0};",
            f"        for (i = 0; i < 4 && 4 * g + i < {sizes[0]}; i++) p[i] = pixels[4 * g + i];",
            "        for (i = 0; i < 16; i++)",
            "            table[g][i] = (i & 1 ? p[0] : 0) + (i & 2 ? p[1] : 0) + (i & 4 ? p[2] : 0) + (i & 8 ? p[3] : 0);",
            "        total += p[0] + p[1] + p[2] + p[3];",
            "    }",
            f"    /* block 1: a = sum (2p - 255) s = 4 S - 2 sum(p) + 255 (n - 2 #(+1)) */",
            f"    for (u = 0; u < {sizes[1]}; u++) {{",
            f"        const uint64_t *w = W1 + (long)u * {words[0]};",
            "        int32_t s = 0, a;",
            f"        for (g = 0; g < {n_groups}; g++) s += table[g][(w[g >> 4] >> (4 * (g & 15))) & 15];",
            "        a = 4 * s - 2 * total + OFFSET1[u];",
            "        x[u >> 6] |= BNN_FIRES(DIR1[u], BOUND1[u], a) << (u & 63);",
            "    }",
            "#endif"]
    for k in range(1, n_hidden):
        body.append(f"    bnn_hidden(W{k + 1}, DIR{k + 1}, BOUND{k + 1}, {sizes[k]}, {words[k]}, {sizes[k + 1]}, x, y);")
        body.append("    memcpy(x, y, sizeof x);")
    body += [f"    /* output layer: float32 sums of +-w in input order, tanh, the first largest */",
             f"    for (j = 0; j < {sizes[-1]}; j++) z[j] = 0.0f;",
             f"    for (i = 0; i < {sizes[-2]}; i++) {{",
             f"        const float *w = OUT + (long)i * {sizes[-1]};",
             f"        if ((x[i >> 6] >> (i & 63)) & 1) for (j = 0; j < {sizes[-1]}; j++) z[j] += w[j];",
             f"        else for (j = 0; j < {sizes[-1]}; j++) z[j] -= w[j];",
             "    }",
             "    best = 0;",
             "    /* tanh as bnnlib computes it (bnnlib.binarize.tanh): 2 sigmoid(2z) - 1, in float32 */",
             f"    for (j = 0; j < {sizes[-1]}; j++) z[j] = 2.0f * (1.0f / (1.0f + expf(-(2.0f * z[j])))) - 1.0f;",
             f"    for (j = 1; j < {sizes[-1]}; j++) if (z[j] > z[best]) best = j;",
             "    return best;",
             "}"]
    out.append("\n".join(body) + "\n")
    return "".join(out)


def export_c(model: Union[str, Path], output: Union[str, Path]) -> int:
    """Write ``model`` (a packed ``.bnn`` file) as C99 to ``output``; returns the bytes written."""
    network = PackedNetwork.load(model)
    text = source(network, Path(model).stem)
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text)
    return output.stat().st_size
