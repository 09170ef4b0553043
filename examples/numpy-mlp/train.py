"""A small MLP on the embedded MNIST subset, in NumPy only: a command trial for Sweep.Actors.

784 -> hidden (ReLU) -> 10, softmax cross-entropy, plain SGD on mini-batches. It speaks the
protocol of docs/command-trials.md: a JSON test point at iteration 0, every --test-interval and at
--max-iter; a checkpoint in $SWEEP_CHECKPOINT_DIR at every test point after 0 but the last, then
{"checkpoint": N}; it resumes from $SWEEP_RESUME_FROM; on SIGTERM it finishes the current step,
checkpoints and exits 0. Same arguments, same numbers, bit for bit, interrupted or not.

    python3 train.py --data ../../data/mnist-10k --lr 0.1 --batch-size 64 --max-iter 300 --test-interval 100
    python3 train.py --data ../../data/mnist-10k --check-gradient
"""
import os

# One BLAS thread, set before NumPy is imported: a multithreaded BLAS may split a matrix product
# differently from run to run (and sum in another order), and the same arguments would then not
# always give the same bits.
for _variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_variable] = "1"

import argparse
import gzip
import io
import json
import signal
import sys

# SIGTERM (the sweep stopping this attempt) only sets a flag: the loop finishes its step, writes a
# checkpoint and exits 0. Installed before the slow imports and the data, so no SIGTERM is lost.
stopping = False


def _on_sigterm(signum, frame):
    global stopping
    stopping = True


signal.signal(signal.SIGTERM, _on_sigterm)

try:
    import numpy as np
except ImportError:
    sys.exit(f"train.py: NumPy is missing for {sys.executable} (on Debian: apt-get install python3-numpy, for /usr/bin/python3)")

# float64 throughout: the gradient check needs it (central differences in float32 are too coarse
# for 1e-6), one precision keeps training and check on the same code, and on 2,000 test images
# and batches of tens the cost is small. Determinism does not depend on it (one BLAS thread does that).
DTYPE = np.float64
STATE_FILE = "state.npz"


def read_idx(path, magic):
    """A gzipped IDX file (or a plain one) as a uint8 array of its dimensions."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    found = int.from_bytes(data[0:4], "big")
    if found != magic:
        raise ValueError(f"{path}: magic {found:#010x}, expected {magic:#010x}")
    dims = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(magic & 0xFF)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * len(dims)).reshape(dims)


def load_split(folder, prefix):
    """Images as rows of 784 pixels / 255 and labels as int64, from PREFIX-images-idx3-ubyte(.gz)."""
    def path(name):
        plain = os.path.join(folder, f"{prefix}-{name}")
        return plain + ".gz" if os.path.exists(plain + ".gz") else plain
    images = read_idx(path("images-idx3-ubyte"), 0x00000803)
    labels = read_idx(path("labels-idx1-ubyte"), 0x00000801)
    return images.reshape(len(images), -1).astype(DTYPE) / 255.0, labels.astype(np.int64)


def init_params(rng, inputs, hidden, outputs):
    """He-normal weights for the ReLU layer, Glorot-normal for the output, zero biases."""
    return {
        "w1": rng.standard_normal((inputs, hidden)) * np.sqrt(2.0 / inputs),
        "b1": np.zeros(hidden, dtype=DTYPE),
        "w2": rng.standard_normal((hidden, outputs)) * np.sqrt(2.0 / (hidden + outputs)),
        "b2": np.zeros(outputs, dtype=DTYPE),
    }


def forward(params, x, y):
    """Mean cross-entropy, the number of correct predictions, and what backward needs."""
    h_pre = x @ params["w1"] + params["b1"]
    h = np.maximum(h_pre, 0.0)
    logits = h @ params["w2"] + params["b2"]
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    loss = -log_probs[np.arange(len(y)), y].mean()
    correct = int((logits.argmax(axis=1) == y).sum())
    return float(loss), correct, (x, y, h_pre, h, log_probs)


def backward(params, cache):
    """The gradient of the mean cross-entropy with respect to every parameter."""
    x, y, h_pre, h, log_probs = cache
    d_logits = np.exp(log_probs)
    d_logits[np.arange(len(y)), y] -= 1.0
    d_logits /= len(y)
    dh = d_logits @ params["w2"].T
    dh = dh * (h_pre > 0)  # the ReLU's derivative
    return {
        "w1": x.T @ dh,
        "b1": dh.sum(axis=0),
        "w2": h.T @ d_logits,
        "b2": d_logits.sum(axis=0),
    }


def evaluate(params, x, y, batch=500):
    """Mean loss and accuracy over a whole split, in fixed batches (the same sums every run)."""
    total_loss, total_correct = 0.0, 0
    for start in range(0, len(y), batch):
        loss, correct, _ = forward(params, x[start:start + batch], y[start:start + batch])
        total_loss += loss * len(y[start:start + batch])
        total_correct += correct
    return total_loss / len(y), total_correct / len(y)


def check_gradient(train_x, train_y, seed):
    """Analytic gradient of a tiny batch against central differences: prints the max relative error."""
    rng = np.random.Generator(np.random.PCG64(seed))
    params = init_params(rng, train_x.shape[1], 8, 10)
    for name in ("b1", "b2"):  # non-zero biases, so their gradients are checked in general position
        params[name] = rng.standard_normal(params[name].shape) * 0.1
    x, y = train_x[:4], train_y[:4]
    _, _, cache = forward(params, x, y)
    analytic = backward(params, cache)
    # A step of 1e-4: truncation error ~1e-8 relative; 1e-5 and below, rounding in the loss takes over.
    step, worst, checked = 1e-4, 0.0, 0
    # No ReLU input within a step of its kink (pixels are at most 1), else the difference quotient straddles it.
    assert np.abs(cache[2]).min() > 10 * step, "a ReLU input is too close to 0 for central differences"
    for name, value in params.items():
        for index in np.ndindex(value.shape):
            if name == "w1" and x[:, index[0]].max() == 0.0:
                continue  # a pixel that is 0 in all four images: its weights get exactly 0 both ways
            original = value[index]
            value[index] = original + step
            plus = forward(params, x, y)[0]
            value[index] = original - step
            minus = forward(params, x, y)[0]
            value[index] = original
            numeric = (plus - minus) / (2 * step)
            a = analytic[name][index]
            worst = max(worst, abs(a - numeric) / max(abs(a) + abs(numeric), 1e-7))
            checked += 1
    print(json.dumps({"check-gradient": "max relative error", "max-relative-error": worst, "parameters": checked}))
    return worst


def save_checkpoint(folder, iteration, params, rng, order, position, sums):
    """Everything the next steps depend on, written to a temporary name and then renamed."""
    temporary = os.path.join(folder, STATE_FILE + ".partial")
    with open(temporary, "wb") as f:
        np.savez(f, iteration=iteration, order=order, position=position,
                 sums=np.array(sums, dtype=DTYPE),
                 rng=json.dumps(rng.bit_generator.state), **params)
        f.flush()
        os.fsync(f.fileno())
    os.replace(temporary, os.path.join(folder, STATE_FILE))
    print(json.dumps({"checkpoint": iteration}))


def load_checkpoint(folder, rng):
    with np.load(os.path.join(folder, STATE_FILE)) as state:
        rng.bit_generator.state = json.loads(str(state["rng"]))
        params = {name: state[name].copy() for name in ("w1", "b1", "w2", "b2")}
        loss_sum, correct, seen, updates = state["sums"].tolist()
        return (int(state["iteration"]), params, state["order"].copy(), int(state["position"]),
                [loss_sum, int(correct), int(seen), int(updates)])


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "data", "mnist-10k"))
    p.add_argument("--lr", type=float, default=0.1)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--hidden", type=int, default=128)
    p.add_argument("--max-iter", type=int, default=300)
    p.add_argument("--test-interval", type=int, default=100)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--check-gradient", action="store_true", help="compare the backward pass with central differences, exit 1 above 1e-6")
    a = p.parse_args()

    train_x, train_y = load_split(a.data, "train")
    if a.check_gradient:
        sys.exit(0 if check_gradient(train_x, train_y, a.seed) <= 1e-6 else 1)
    test_x, test_y = load_split(a.data, "t10k")
    if not 0 < a.batch_size <= len(train_y):
        sys.exit(f"train.py: --batch-size {a.batch_size}: between 1 and {len(train_y)}")

    # One generator for everything random: the weights first, then one permutation of the
    # training set per epoch, drawn when the previous one is used up.
    rng = np.random.Generator(np.random.PCG64(a.seed))
    params = init_params(rng, train_x.shape[1], a.hidden, 10)
    order, position = rng.permutation(len(train_y)), 0
    sums = [0.0, 0, 0, 0]  # since the last test point: loss × updates, correct, images seen, updates
    iteration = 0
    checkpoints = os.environ.get("SWEEP_CHECKPOINT_DIR")
    resume = os.environ.get("SWEEP_RESUME_FROM")
    if resume and os.path.exists(os.path.join(resume, STATE_FILE)):
        iteration, params, order, position, sums = load_checkpoint(resume, rng)
        print(f"resuming from iteration {iteration}")
    else:
        print(f"training from scratch: {len(train_y)} training and {len(test_y)} test images, hidden {a.hidden}")

    def next_batch(order, position):
        if position + a.batch_size > len(order):  # a new epoch: the rest of this one is dropped
            order, position = rng.permutation(len(train_y)), 0
        return order, position, order[position:position + a.batch_size]

    def test_point(train_loss, train_accuracy):
        test_loss, test_accuracy = evaluate(params, test_x, test_y)
        print(json.dumps({"iteration": iteration, "train-loss": train_loss, "train-accuracy": train_accuracy,
                          "test-loss": test_loss, "test-accuracy": test_accuracy, "learning-rate": a.lr}))

    def checkpoint():
        if checkpoints:
            save_checkpoint(checkpoints, iteration, params, rng, order, position, sums)

    if iteration == 0:
        # The first batch under the initial weights (peeked at: drawing it again below gives the same).
        _, _, batch = next_batch(order, position)
        loss, correct, _ = forward(params, train_x[batch], train_y[batch])
        test_point(loss, correct / len(batch))

    while iteration < a.max_iter:
        if stopping:
            checkpoint()
            return
        order, position, batch = next_batch(order, position)
        position += len(batch)
        loss, correct, cache = forward(params, train_x[batch], train_y[batch])
        grads = backward(params, cache)
        for name in params:
            params[name] -= a.lr * grads[name]
        iteration += 1
        sums = [sums[0] + loss, sums[1] + correct, sums[2] + len(batch), sums[3] + 1]
        if iteration % a.test_interval == 0 or iteration == a.max_iter:
            test_point(sums[0] / sums[3], sums[1] / sums[2])
            sums = [0.0, 0, 0, 0]
            if iteration < a.max_iter:
                checkpoint()


if __name__ == "__main__":
    main()
