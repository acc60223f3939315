"""The renderer's and the upsampling's per-pixel loops, as Python source for numba: compiled ahead of time by
:mod:`runtime.kernel_build` (``make setup``) into an extension module, or just in time where that module is
missing (:mod:`runtime.kernels` loads one or the other). Each loop reads its full-resolution planes once and
writes its output once, where a chain of OpenCV or numpy passes writes and reads a temporary at every step.

Rules of this file: the functions call no Python and no other function of theirs (they are the extension's
exports, each of one signature: :data:`EXPORTS`; a helper would have to be numba's, and this file imports no
numba, so the few lines they share are written in each); array arguments are C-contiguous; an absent plane is one
of shape (0, 0); indices are the callers' to keep inside the arrays (nothing is bounds-checked).
"""

import numpy as np


def block_light(photo, alpha, lut, boost_v, boost_above, bright_lut, isolated_lut, gain, factor, first, last,
                light, weight):
    """For block rows ``first``..``last``: ``light`` (h, w, 3) the mean over each ``factor``² block of
    lut[photo] · (1 − α) · boost, ``weight`` (h, w) the mean of 1 − α. ``alpha`` of shape (0, 0): none (the weight
    is 1). ``boost_v`` of shape (0, 0): no boost; else the boost is 1 + gain · bright_lut[v] · isolated_lut[above]
    (:func:`runtime.lens_blur.highlight_boost` from its uint8 planes)."""
    has_alpha = alpha.shape[0] > 0
    has_boost = boost_v.shape[0] > 0
    blocks = light.shape[1]
    scale = np.float32(1.0 / (factor * factor))
    sums = np.zeros((blocks, 4), np.float32)
    for by in range(first, last):
        sums[:] = 0.0
        for y in range(by * factor, by * factor + factor):
            for bx in range(blocks):
                r = np.float32(0.0)
                g = np.float32(0.0)
                b = np.float32(0.0)
                k = np.float32(0.0)
                for x in range(bx * factor, bx * factor + factor):
                    keep = np.float32(1.0) - alpha[y, x] if has_alpha else np.float32(1.0)
                    k += keep
                    if has_boost:
                        keep *= np.float32(1.0) + gain * bright_lut[boost_v[y, x]] * isolated_lut[boost_above[y, x]]
                    r += lut[photo[y, x, 0]] * keep
                    g += lut[photo[y, x, 1]] * keep
                    b += lut[photo[y, x, 2]] * keep
                sums[bx, 0] += r
                sums[bx, 1] += g
                sums[bx, 2] += b
                sums[bx, 3] += k
        for bx in range(blocks):
            light[by, bx, 0] = sums[bx, 0] * scale
            light[by, bx, 1] = sums[bx, 1] * scale
            light[by, bx, 2] = sums[bx, 2] * scale
            weight[by, bx] = sums[bx, 3] * scale


def replace_light(photo, alpha, lut, boost_v, boost_above, bright_lut, isolated_lut, gain, factor, index, new,
                  light):
    """Where the pixels of flat ``index`` (in rows of the photo's width) have the weighted light ``new`` (n, 3)
    instead of :func:`block_light`'s own, move their blocks' means in ``light`` by the difference (a dense boost,
    ``boost_v`` not empty, multiplies ``new`` too). Pixels in the rows and columns the blocks leave out are
    skipped."""
    has_alpha = alpha.shape[0] > 0
    has_boost = boost_v.shape[0] > 0
    width = photo.shape[1]
    scale = np.float32(1.0 / (factor * factor))
    for i in range(index.shape[0]):
        y = index[i] // width
        x = index[i] - y * width
        by = y // factor
        bx = x // factor
        if by >= light.shape[0] or bx >= light.shape[1]:
            continue
        keep = np.float32(1.0) - alpha[y, x] if has_alpha else np.float32(1.0)
        boost = np.float32(1.0)
        if has_boost:
            boost = np.float32(1.0) + gain * bright_lut[boost_v[y, x]] * isolated_lut[boost_above[y, x]]
        for c in range(3):
            light[by, bx, c] += (new[i, c] - lut[photo[y, x, c]] * keep) * boost * scale


def brightest(rgb, out):
    """``out`` (n,) uint8: each pixel's brightest channel of ``rgb``, n uint8 RGB pixels (3n,), both flat (numpy's
    maximum over the strided channel views: 17 ms at 12 MP; this loop, which the compiler vectorises, 3)."""
    for i in range(out.shape[0]):
        r = rgb[3 * i]
        g = rgb[3 * i + 1]
        b = rgb[3 * i + 2]
        m = r if r > g else g
        out[i] = m if m > b else b


def apply_linear(a, b, guide, decided, decided_rows, decided_columns, rows, columns, tol, first, last, q):
    """Rows ``first``..``last`` of ``q`` (H, W) = āᵀ·I + b̄, ā (h, w, C) and b̄ (h, w) read bilinearly at each pixel
    of the guide I (H, W, C): ``rows`` and ``columns`` (H, 3) and (W, 3) hold each full-resolution row's and
    column's two low-resolution neighbours and the second one's weight. ``tol`` ≥ 0: clipped to [0, 1] and
    snapped to 0 / 1 within ``tol``. ``decided`` (h', w'), unless of shape (0, 0), read at row
    ``decided_rows[y]`` and column ``decided_columns[x]`` (nearest neighbour, any resolution, the columns in
    order): 0 / 255 where q is 0 / 1 without the filter, which runs only on its other pixels. A row of
    ``decided`` is read once, into segments of one kind (0, 255, or to compute), which every photo row reading
    it fills or computes span by span."""
    channels, width = guide.shape[2], guide.shape[1]
    has_decided = decided.shape[0] > 0
    starts = np.empty(width + 1, np.int64)     # the runs of photo columns reading one column of decided
    labels_at = np.empty(width, np.int64)
    runs = 0
    for x in range(width):
        if not has_decided or x == 0 or decided_columns[x] != decided_columns[x - 1]:
            starts[runs] = x
            labels_at[runs] = decided_columns[x] if has_decided else 0
            runs += 1
            if not has_decided:
                break
    starts[runs] = width
    span_start, span_stop = np.empty(runs, np.int64), np.empty(runs, np.int64)
    span_kind = np.empty(runs, np.int64)       # 0, 255, or 128: computed
    spans, spans_row = 0, -1
    for y in range(first, last):
        row = decided_rows[y] if has_decided else 0
        if row != spans_row or spans == 0:
            spans = 0
            for r in range(runs):
                label = decided[row, labels_at[r]] if has_decided else 128
                kind = label if label == 0 or label == 255 else 128
                if spans > 0 and span_kind[spans - 1] == kind:
                    span_stop[spans - 1] = starts[r + 1]
                else:
                    span_start[spans], span_stop[spans], span_kind[spans] = starts[r], starts[r + 1], kind
                    spans += 1
            spans_row = row
        y0, y1, wy = int(rows[y, 0]), int(rows[y, 1]), rows[y, 2]
        for s in range(spans):
            if span_kind[s] != 128:
                value = np.float32(1.0) if span_kind[s] == 255 else np.float32(0.0)
                for x in range(span_start[s], span_stop[s]):
                    q[y, x] = value
                continue
            for x in range(span_start[s], span_stop[s]):
                x0, x1, wx = int(columns[x, 0]), int(columns[x, 1]), columns[x, 2]
                w00 = (np.float32(1.0) - wy) * (np.float32(1.0) - wx)
                w01 = (np.float32(1.0) - wy) * wx
                w10 = wy * (np.float32(1.0) - wx)
                w11 = wy * wx
                v = w00 * b[y0, x0] + w01 * b[y0, x1] + w10 * b[y1, x0] + w11 * b[y1, x1]
                for c in range(channels):
                    coefficient = w00 * a[y0, x0, c] + w01 * a[y0, x1, c] + w10 * a[y1, x0, c] + w11 * a[y1, x1, c]
                    v += coefficient * guide[y, x, c]
                if tol >= 0:
                    if v <= tol:
                        v = np.float32(0.0)
                    elif v > np.float32(1.0) - tol:
                        v = np.float32(1.0)
                q[y, x] = v


def guided_fit(means, eps, first, last, fit):
    """Rows ``first``..``last`` of ``fit`` (C + 1, h, w): each window's least-squares a (C planes) and b of
    p ≈ aᵀ·I + b, from its box means ``means`` (h, w planes): I's C channels, p, each channel times p, then the
    channels' products I_i·I_j, i ≤ j, in row order (C = 1: 4 planes; C = 3: 13). Σ a = cov(I, p) with
    Σ = E[I Iᵀ] − μμᵀ + eps·1, by the Cholesky factor Σ = L Lᵀ where C = 3; b = mean(p) − aᵀμ. The float32
    operations of the numpy form it replaced (:func:`benchmarks.pipeline_reference.local_fit`), in its order."""
    channels = fit.shape[0] - 1
    tiny = np.float32(1e-30)
    for y in range(first, last):
        for x in range(means.shape[2]):
            mp = means[channels, y, x]
            if channels == 1:
                m0 = means[0, y, x]
                a0 = (means[2, y, x] - m0 * mp) / (means[3, y, x] - m0 * m0 + eps)
                fit[0, y, x] = a0
                fit[1, y, x] = mp - a0 * m0
                continue
            m0, m1, m2 = means[0, y, x], means[1, y, x], means[2, y, x]
            r0, r1, r2 = means[4, y, x] - m0 * mp, means[5, y, x] - m1 * mp, means[6, y, x] - m2 * mp
            s00 = means[7, y, x] - m0 * m0 + eps
            s01 = means[8, y, x] - m0 * m1
            s02 = means[9, y, x] - m0 * m2
            s11 = means[10, y, x] - m1 * m1 + eps
            s12 = means[11, y, x] - m1 * m2
            s22 = means[12, y, x] - m2 * m2 + eps
            l00 = np.sqrt(max(s00, tiny))
            l10, l20 = s01 / l00, s02 / l00
            l11 = np.sqrt(max(s11 - l10 * l10, tiny))
            l21 = (s12 - l20 * l10) / l11
            l22 = np.sqrt(max(s22 - l20 * l20 - l21 * l21, tiny))
            y0 = r0 / l00
            y1 = (r1 - l10 * y0) / l11
            y2 = (r2 - l20 * y0 - l21 * y1) / l22
            x2 = y2 / l22
            x1 = (y1 - l21 * x2) / l11
            x0 = (y0 - l10 * x1 - l20 * x2) / l00
            fit[0, y, x] = x0
            fit[1, y, x] = x1
            fit[2, y, x] = x2
            b = mp - x0 * m0
            b = b - x1 * m1
            fit[3, y, x] = b - x2 * m2


def area_reduce(image, row_start, row_index, row_weight, column_start, column_index, column_weight, scale, first,
                last, out):
    """Rows ``first``..``last`` of ``out`` (h, w, C) float32: ``image`` (H, W, C) uint8 averaged over each output pixel's
    area, times ``scale``. Output row i is the sum of the source rows ``row_index[row_start[i]:row_start[i + 1]]``
    times their shares ``row_weight`` (the fractions of the row's area they cover), summed along the row into
    one line, then each output column likewise from that line (``column_*``): OpenCV's area resampling, in float
    and without its rounding to the source's type."""
    width, channels = image.shape[1], image.shape[2]
    line = np.empty(width * channels, np.float32)
    for i in range(first, last):
        for x in range(width * channels):
            line[x] = np.float32(0.0)
        for k in range(row_start[i], row_start[i + 1]):
            source, share = image[row_index[k]].reshape(width * channels), row_weight[k]
            for x in range(width * channels):
                line[x] += share * np.float32(source[x])
        for o in range(out.shape[1]):
            first_k, last_k = column_start[o], column_start[o + 1]
            if channels == 3:          # the three sums side by side
                r, g, b = np.float32(0.0), np.float32(0.0), np.float32(0.0)
                for k in range(first_k, last_k):
                    at, share = column_index[k] * 3, column_weight[k]
                    r += share * line[at]
                    g += share * line[at + 1]
                    b += share * line[at + 2]
                out[i, o, 0], out[i, o, 1], out[i, o, 2] = r * scale, g * scale, b * scale
                continue
            for c in range(channels):
                v = np.float32(0.0)
                for k in range(first_k, last_k):
                    v += column_weight[k] * line[column_index[k] * channels + c]
                out[i, o, c] = v * scale


def fuse_at(photo, alpha, index, top, left, mean_f, mean_b, rows, columns, first, last, fg,
            bg):
    """Blur fusion's last step at the pixels ``index[first:last]`` (flat, in rows of the photo's width): F̄ and B̄
    read bilinearly from ``mean_f`` and ``mean_b`` (h, w, 3), whose grid covers the photo's box from (``top``,
    ``left``) (``rows`` and ``columns``: that box's rows' and columns' neighbours, as :func:`apply_linear`'s), then
    F = clip(F̄ + α·(I − αF̄ − (1 − α)B̄)) and B = clip((I − αF) / (1 − α)) into ``fg`` and ``bg`` (n, 3)."""
    width = photo.shape[1]
    for i in range(first, last):
        y = index[i] // width
        x = index[i] - y * width
        r, c = y - top, x - left
        y0, y1, wy = int(rows[r, 0]), int(rows[r, 1]), rows[r, 2]
        x0, x1, wx = int(columns[c, 0]), int(columns[c, 1]), columns[c, 2]
        w00 = (np.float32(1.0) - wy) * (np.float32(1.0) - wx)
        w01 = (np.float32(1.0) - wy) * wx
        w10 = wy * (np.float32(1.0) - wx)
        w11 = wy * wx
        a = alpha[y, x]
        for k in range(3):
            f = w00 * mean_f[y0, x0, k] + w01 * mean_f[y0, x1, k] + w10 * mean_f[y1, x0, k] + w11 * mean_f[y1, x1, k]
            b = w00 * mean_b[y0, x0, k] + w01 * mean_b[y0, x1, k] + w10 * mean_b[y1, x0, k] + w11 * mean_b[y1, x1, k]
            image = np.float32(photo[y, x, k]) / np.float32(255.0)
            f = min(max(f + a * (image - a * f - (np.float32(1.0) - a) * b), np.float32(0.0)), np.float32(1.0))
            fg[i, k] = f
            bg[i, k] = min(max((image - a * f) / (np.float32(1.0) - a), np.float32(0.0)), np.float32(1.0))


def composite_rows(alpha, background, rows, columns, first, last, out):
    """Rows ``first``..``last`` of ``out`` (H, W, 3) uint8, which holds the photo: where α < 1, the ``background``
    (h, w, 3) uint8 read bilinearly (``rows`` and ``columns`` as :func:`apply_linear`'s) and rounded, each of its
    rows interpolated across once, into ``upper`` and ``lower``, then each photo row their blend; the photo left
    where α ≥ 1."""
    width = alpha.shape[1]
    one, half = np.float32(1.0), np.float32(0.5)
    upper, lower = np.empty(width * 3, np.float32), np.empty(width * 3, np.float32)
    blend = np.empty(width * 3, np.uint8)
    have_upper, have_lower = -1, -1
    for y in range(first, last):
        y0, y1, wy = int(rows[y, 0]), int(rows[y, 1]), rows[y, 2]
        if y0 != have_upper and y0 == have_lower:      # a small row further down: the lower one is the upper now
            upper, lower = lower, upper
            have_upper, have_lower = have_lower, -1
        for side in range(2):
            wanted, held = (y0, have_upper) if side == 0 else (y1, have_lower)
            if wanted != held:
                line = upper if side == 0 else lower
                for x in range(width):
                    x0, x1, wx = int(columns[x, 0]), int(columns[x, 1]), columns[x, 2]
                    for c in range(3):
                        line[3 * x + c] = ((one - wx) * np.float32(background[wanted, x0, c])
                                           + wx * np.float32(background[wanted, x1, c]))
        have_upper, have_lower = y0, y1
        for k in range(width * 3):     # a mean of 8-bit values: in [0, 255], rounded half up
            blend[k] = np.uint8((one - wy) * upper[k] + wy * lower[k] + half)
        for x in range(width):
            if alpha[y, x] < one:
                for c in range(3):
                    out[y, x, c] = blend[3 * x + c]


def mix_at(alpha, index, fg, first, last, out):
    """α·F + (1 − α)·out, rounded, into ``out`` (H, W, 3) uint8, which holds the background, at the pixels
    ``index[first:last]`` (flat, in rows of the photo's width), F = ``fg`` (n, 3) in [0, 1]; a pixel with α ≥ 1
    keeps what ``out`` holds there (the photo)."""
    width = alpha.shape[1]
    for i in range(first, last):
        y = index[i] // width
        x = index[i] - y * width
        a = alpha[y, x]
        if a >= np.float32(1.0):
            continue
        for c in range(3):
            value = np.rint(a * fg[i, c] * np.float32(255.0) + (np.float32(1.0) - a) * np.float32(out[y, x, c]))
            out[y, x, c] = np.uint8(min(max(value, np.float32(0.0)), np.float32(255.0)))


def encode_light(num, den, first, last, out):
    """Rows ``first``..``last`` of ``out`` (h, w, 3) uint8: the light ``num`` (h, w, 3) over ``den`` (h, w) (at least
    1e-6), clipped to [0, 1] and encoded to sRGB (:func:`runtime.lens_blur.linear_to_srgb`), rounded."""
    one, zero = np.float32(1.0), np.float32(0.0)
    for y in range(first, last):
        for x in range(num.shape[1]):
            d = max(den[y, x], np.float32(1e-6))
            for c in range(3):
                v = min(max(num[y, x, c] / d, zero), one)
                if v <= np.float32(0.0031308):
                    v = v * np.float32(12.92)
                else:
                    v = np.float32(1.055) * v ** np.float32(1 / 2.4) - np.float32(0.055)
                out[y, x, c] = np.uint8(np.rint(v * np.float32(255.0)))


def partly_transparent_at(alpha, first, last, found):
    """Write into ``found`` the flat indices i, ``first`` ≤ i < ``last``, where 0 < ``alpha[i]`` < 1 (``alpha``
    flat), in order; return how many."""
    n = 0
    for i in range(first, last):
        if np.float32(0.0) < alpha[i] < np.float32(1.0):
            found[n] = i
            n += 1
    return n


EXPORTS = {   # the extension's name of each loop: (the function, its one signature)
    "block_light": (block_light, "void(u1[:,:,::1], f4[:,::1], f4[::1], u1[:,::1], u1[:,::1], f4[::1], f4[::1], f4, "
                                 "i8, i8, i8, f4[:,:,::1], f4[:,::1])"),
    "replace_light": (replace_light, "void(u1[:,:,::1], f4[:,::1], f4[::1], u1[:,::1], u1[:,::1], f4[::1], f4[::1], "
                                     "f4, i8, i8[::1], f4[:,::1], f4[:,:,::1])"),
    "brightest": (brightest, "void(u1[::1], u1[::1])"),
    "apply_linear": (apply_linear, "void(f4[:,:,::1], f4[:,::1], u1[:,:,::1], u1[:,::1], i8[::1], i8[::1], f4[:,::1], "
                                   "f4[:,::1], f4, i8, i8, f4[:,::1])"),
    "apply_linear_float": (apply_linear, "void(f4[:,:,::1], f4[:,::1], f4[:,:,::1], u1[:,::1], i8[::1], i8[::1], "
                                         "f4[:,::1], f4[:,::1], f4, i8, i8, f4[:,::1])"),
    "guided_fit": (guided_fit, "void(f4[:,:,::1], f4, i8, i8, f4[:,:,::1])"),
    "area_reduce": (area_reduce, "void(u1[:,:,::1], i8[::1], i8[::1], f4[::1], i8[::1], i8[::1], f4[::1], f4, i8, i8, "
                                 "f4[:,:,::1])"),
    "fuse_at": (fuse_at, "void(u1[:,:,::1], f4[:,::1], i8[::1], i8, i8, f4[:,:,::1], f4[:,:,::1], f4[:,::1], "
                         "f4[:,::1], i8, i8, f4[:,::1], f4[:,::1])"),
    "composite_rows": (composite_rows, "void(f4[:,::1], u1[:,:,::1], f4[:,::1], f4[:,::1], i8, i8, u1[:,:,::1])"),
    "mix_at": (mix_at, "void(f4[:,::1], i8[::1], f4[:,::1], i8, i8, u1[:,:,::1])"),
    "encode_light": (encode_light, "void(f4[:,:,::1], f4[:,::1], i8, i8, u1[:,:,::1])"),
    "partly_transparent_at": (partly_transparent_at, "i8(f4[::1], i8, i8, i8[::1])"),
}
