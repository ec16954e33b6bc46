"""Training package: geometry, targets, labels and their cache, the loop, checkpoints.

Runs without ../shared: the real samples are 4 LSPET crops in tests/data/train.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from core.errors import InputError
from core.keypoints import NUM_KEYPOINTS, flip_permutation
from core.pose.estimator import PoseEstimate
from core.pose.postprocess import decode_heatmaps
from core.pose.preprocess import affine_matrix, box_to_center_scale
from core.training import labels as L
from core.training import sources
from core.training.configs import TRAIN_CONFIGS, get_train_config
from core.training.data import PoseTrainDataset, TrainPerson, render_sample, split_people
from core.training.trainer import JointsMSELoss, TrainConfig, Trainer, init_weights
from core.training.transforms import (NO_AUGMENT, AugmentConfig, affine_matrix_rot,
                                      apply_affine, flip_joints, gaussian_targets)

TRAIN_DATA = Path(__file__).resolve().parent / "data" / "train"
INPUT = (48, 64)                 # tp-r-micro's input (w, h)
HEATMAP = (12, 16)
MICRO = "tp-r-micro"


def _dots_image(points: np.ndarray, size=(200, 160), radius=2) -> np.ndarray:
    """Black BGR image with a white square dot centred on each point."""
    h, w = size
    img = np.zeros((h, w, 3), np.uint8)
    for x, y in points:
        xi, yi = int(round(x)), int(round(y))
        img[max(0, yi - radius):yi + radius + 1, max(0, xi - radius):xi + radius + 1] = 255
    return img


def _fixture_people() -> list[TrainPerson]:
    people = sources.lspet_people(TRAIN_DATA)
    kept, _ = L.label_people(people, None)
    return kept


# ------------------------------------------------------------------------- geometry
def test_rotation_free_affine_is_the_inference_affine():
    c, s = box_to_center_scale([30.5, 12.0, 81.0, 140.0], (192, 256))
    for size in ((192, 256), (48, 64)):
        np.testing.assert_array_equal(affine_matrix_rot(c, s, size, 0.0),
                                      affine_matrix(c, s, size))
        np.testing.assert_array_equal(affine_matrix_rot(c, s, size, 0.0, inverse=True),
                                      affine_matrix(c, s, size, inverse=True))
    # a rotation keeps the centre on the output's pixel centre
    m = affine_matrix_rot(c, s, (48, 64), 30.0)
    np.testing.assert_allclose(apply_affine(c[None], m)[0], [23.5, 31.5], atol=1e-4)


def test_target_peak_sits_at_the_transformed_joint_subpixel():
    joints = np.zeros((NUM_KEYPOINTS, 2))
    joints[5] = [63.37, 71.81]
    joints[12] = [90.2, 140.66]
    weights = np.zeros(NUM_KEYPOINTS, np.float32)
    weights[[5, 12]] = 1.0
    box = [40.0, 30.0, 80.0, 150.0]
    img = np.zeros((200, 160, 3), np.uint8)
    s = render_sample(img, box, joints, weights, INPUT, HEATMAP, sigma=1.0)
    center, scale = box_to_center_scale(box, INPUT)
    expected = apply_affine(joints, affine_matrix(center, scale, HEATMAP))
    ys, xs = np.mgrid[0:HEATMAP[1], 0:HEATMAP[0]]
    for k in (5, 12):
        t = s.target[k]
        assert t.max() > 0.8 and s.target_weight[k] == 1.0
        # the Gaussian's centroid (its sub-pixel centre) is the joint mapped to the heatmap
        cx, cy = (t * xs).sum() / t.sum(), (t * ys).sum() / t.sum()
        np.testing.assert_allclose([cx, cy], expected[k], atol=0.02)
    assert not s.target[[i for i in range(NUM_KEYPOINTS) if i not in (5, 12)]].any()
    # and the inference decoder (DARK) maps the target back onto the image joint
    coords, _, _ = decode_heatmaps(s.target[None], center[None], scale[None])
    px_per_cell = scale[0] * 200 / HEATMAP[0]
    for k in (5, 12):
        assert np.linalg.norm(coords[0, k] - joints[k]) < 0.1 * px_per_cell


def test_flip_swaps_joint_pairs_and_mirrors_x():
    joints = np.arange(NUM_KEYPOINTS * 2, dtype=np.float64).reshape(NUM_KEYPOINTS, 2) + 10
    weights = np.linspace(0.1, 1.0, NUM_KEYPOINTS).astype(np.float32)
    fj, fw = flip_joints(joints, weights, width=160)
    perm = flip_permutation()
    for k in range(NUM_KEYPOINTS):
        assert fj[k, 0] == 159 - joints[perm[k], 0] and fj[k, 1] == joints[perm[k], 1]
        assert fw[k] == weights[perm[k]]
    assert fj[5, 0] == 159 - joints[6, 0]          # left shoulder <- right shoulder

    # on a real sample: the flipped crop is the mirror image, the left wrist target is the
    # mirrored right wrist target
    person = _fixture_people()[0]
    import cv2
    img = cv2.imread(person.image_path)
    a = render_sample(img, person.box, person.joints, person.weights, INPUT, HEATMAP, 1.0)
    flip = AugmentConfig(**{**NO_AUGMENT.__dict__, "flip_prob": 1.0})
    b = render_sample(img, person.box, person.joints, person.weights, INPUT, HEATMAP, 1.0,
                      flip, np.random.default_rng(0))
    assert b.flipped and not a.flipped
    diff = np.abs(b.crop_rgb.astype(int) - a.crop_rgb[:, ::-1].astype(int))
    assert diff.max() <= 1
    np.testing.assert_allclose(b.target, a.target[perm][:, :, ::-1], atol=1e-5)
    np.testing.assert_allclose(b.joints_input[9, 0], INPUT[0] - 1 - a.joints_input[10, 0],
                               atol=1e-4)


def test_rotation_and_scale_keep_joints_on_the_image():
    rng = np.random.default_rng(3)
    joints = np.column_stack([rng.uniform(50, 110, NUM_KEYPOINTS),
                              rng.uniform(40, 170, NUM_KEYPOINTS)])
    weights = np.ones(NUM_KEYPOINTS, np.float32)
    aug = AugmentConfig(**{**NO_AUGMENT.__dict__, "scale_factor": 0.35, "rotation_factor": 45.0,
                           "rotation_prob": 1.0, "flip_prob": 0.5})
    checked = 0
    for trial in range(8):
        j = joints[trial % NUM_KEYPOINTS][None]        # one dot, so no neighbour can help
        img = _dots_image(j, radius=3)
        w1 = np.ones(1, np.float32)
        # pad to 17 joints: the others unlabelled
        jj = np.zeros((NUM_KEYPOINTS, 2))
        jj[0] = j[0]
        ww = np.zeros(NUM_KEYPOINTS, np.float32)
        ww[0] = w1[0]
        s = render_sample(img, [40, 30, 80, 150], jj, ww, (96, 128), (24, 32), 1.0, aug,
                          np.random.default_rng(trial))
        x, y = s.joints_input[0]
        if not (2 <= x <= 93 and 2 <= y <= 125):
            continue
        assert abs(s.rotation) > 0
        assert s.crop_rgb[int(round(y)), int(round(x))].min() > 120, (trial, x, y)
        # the brightest pixels' centroid is under the joint
        g = s.crop_rgb[..., 0].astype(float)
        ys, xs = np.nonzero(g > 100)
        wts = g[ys, xs]
        np.testing.assert_allclose([(xs * wts).sum() / wts.sum(), (ys * wts).sum() / wts.sum()],
                                   [x, y], atol=0.75)
        checked += 1
    assert checked >= 5
    del weights


def test_targets_weights_from_human_teacher_and_missing():
    human = np.zeros((NUM_KEYPOINTS, 3))
    human[5] = [10, 20, 2]
    human[6] = [30, 20, 1]
    t_kps = np.full((NUM_KEYPOINTS, 2), 50.0, np.float32)
    t_sc = np.full(NUM_KEYPOINTS, 0.1, np.float32)
    t_sc[0], t_sc[5], t_sc[7] = 0.8, 0.9, 0.3
    joints, weights, prov = L.merge_labels(human, t_kps, t_sc, floor=0.3)
    assert weights[5] == 1.0 and tuple(joints[5]) == (10, 20) and prov[5] == L.FROM_HUMAN
    assert weights[6] == 1.0 and prov[6] == L.FROM_HUMAN           # v=1 counts as labelled
    assert weights[0] == pytest.approx(0.8) and prov[0] == L.FROM_TEACHER
    assert weights[7] == pytest.approx(0.3)                        # at the floor: kept
    assert weights[8] == 0 and prov[8] == L.FROM_NONE              # below the floor
    _, w_none, _ = L.merge_labels(None, None, None)
    assert not w_none.any()
    # a joint off the heatmap gets no weight; inside keeps its label weight
    jh = np.array([[5.0, 5.0], [-3.0, 4.0], [11.4, 15.4]] + [[0, 0]] * 14)
    tw_in = np.array([0.7, 1.0, 1.0] + [0.0] * 14, np.float32)
    target, tw = gaussian_targets(jh, tw_in, HEATMAP, 1.0)
    assert tw[0] == pytest.approx(0.7) and tw[1] == 0 and tw[2] == 1.0
    assert target[1].max() == 0 and target[0].max() == pytest.approx(1.0)


# ------------------------------------------------------------------------- labels
def _person(human=None, uid="p"):
    return TrainPerson(image_path="x.jpg", box=np.array([0, 0, 100, 200.0]), human=human,
                       source="test", uid=uid)


def test_side_swap_flag_on_a_constructed_case():
    perm = flip_permutation()
    teacher = np.zeros((NUM_KEYPOINTS, 2), np.float32)
    for k in range(NUM_KEYPOINTS):                 # person's left on image right
        side = 1 if k % 2 == 1 else -1
        teacher[k] = [50 + side * 20, 10 + 11 * k]
    scores = np.full(NUM_KEYPOINTS, 0.9, np.float32)
    correct = np.column_stack([teacher + 1.5, np.full(NUM_KEYPOINTS, 2.0)])
    correct[:5, 2] = 0                             # LSPET: no face labels
    swapped = correct[perm]                        # observer-centric labels
    box = [0, 0, 100, 200]
    assert not L.check_side_swap(correct, teacher, scores, box).flagged
    chk = L.check_side_swap(swapped, teacher, scores, box)
    assert chk.flagged and chk.d_swap < 0.5 * chk.d_same and chk.joints == 12
    # side view: both sides in the same place -> nothing to decide
    side_view = correct.copy()
    side_view[:, 0] = 50
    side_teacher = teacher.copy()
    side_teacher[:, 0] = 50
    assert not L.check_side_swap(side_view[perm], side_teacher, scores, box).flagged
    # an unconfident teacher decides nothing
    assert not L.check_side_swap(swapped, teacher, np.full(17, 0.1), box).flagged

    class Fixed:
        calls = labelled = cached = 0
        name = "fixed"

        def label(self, items, progress=None):
            n = len(items)
            return np.repeat(teacher[None], n, 0), np.repeat(scores[None], n, 0)

    people = [_person(swapped.copy(), "a"), _person(correct.copy(), "b")]
    kept, st = L.label_people(people, Fixed(), swap_policy="swap")
    assert st.flagged == 1 and st.flagged_ids == ["a"] and st.compared == 2
    assert kept[0].flags == ("side-swap",) and kept[1].flags == ()
    np.testing.assert_allclose(kept[0].joints[5:], correct[5:, :2])   # sides fixed
    assert (kept[0].weights[5:] == 1).all() and (kept[0].provenance[:5] == L.FROM_TEACHER).all()
    kept, st = L.label_people([_person(swapped.copy(), "a")], Fixed(), swap_policy="drop")
    assert st.flagged == 1 and (kept[0].provenance == L.FROM_TEACHER).all()
    np.testing.assert_allclose(kept[0].weights, 0.9, atol=1e-6)


class CountingTeacher:
    """A fake pose backend: keypoints at the box centre, counts its calls."""

    def __init__(self, score=0.8):
        self.calls = 0
        self.score = score

    def __call__(self, image, boxes):
        self.calls += 1
        b = np.asarray(boxes, np.float32).reshape(-1, 4)
        kps = np.repeat((b[:, None, :2] + b[:, None, 2:] / 2), NUM_KEYPOINTS, axis=1)
        return PoseEstimate(boxes=b, keypoints=kps,
                            scores=np.full((len(b), NUM_KEYPOINTS), self.score, np.float32))


def test_cache_avoids_relabelling(tmp_path):
    images = sorted((TRAIN_DATA / "images").glob("*.jpg"))
    items = [(str(images[0]), [10, 10, 50, 80]), (str(images[0]), [20, 5, 40, 90]),
             (str(images[1]), [5, 5, 60, 100])]
    backend = CountingTeacher()
    cache = L.LabelCache(tmp_path / "cache")
    lab = L.TeacherLabeller([L.Teacher("fake-v1", backend, box_enlarge=1.25)], cache)
    k1, s1 = lab.label(items)
    assert backend.calls == 2 and lab.labelled == 3          # one call per image
    np.testing.assert_allclose(k1[0, 0], [35, 50])            # the box centre survives 1.25x
    lab2 = L.TeacherLabeller([L.Teacher("fake-v1", backend, box_enlarge=1.25)], cache)
    k2, s2 = lab2.label(items)
    assert backend.calls == 2 and lab2.calls == 0 and lab2.cached == 3
    np.testing.assert_array_equal(k1, k2)
    np.testing.assert_array_equal(s1, s2)
    # another teacher name or another box is labelled anew
    lab3 = L.TeacherLabeller([L.Teacher("fake-v2", backend)], cache)
    lab3.label(items[:1])
    assert backend.calls == 3
    lab2.label([(str(images[0]), [11, 10, 50, 80])])
    assert backend.calls == 4
    # two teachers: per keypoint by confidence, each through its own cache entries
    low = CountingTeacher(score=0.4)
    both = L.TeacherLabeller([L.Teacher("fake-v1", backend), L.Teacher("fake-low", low)], cache)
    k, s = both.label(items)
    assert backend.calls == 4 and low.calls == 2
    np.testing.assert_allclose(s, 0.8)
    np.testing.assert_allclose(k, k1, atol=1e-4)              # same place: the mean


def test_teacher_spec_parsing():
    assert L.parse_teacher_spec("movenet:/x/m.onnx") == ("movenet", "/x/m.onnx")
    assert L.parse_teacher_spec("both") == ("both", None)
    assert L.parse_teacher_spec("blazepose") == ("blazepose", None)
    with pytest.raises(InputError):
        L.parse_teacher_spec("openpose")


# ------------------------------------------------------------------------- sources
def test_evaluation_sets_are_refused_and_coco8_ids_left_out(tmp_path):
    with pytest.raises(InputError, match="evaluation"):
        sources.guard_not_evaluation("/data/coco8-pose")
    with pytest.raises(InputError, match="evaluation"):
        sources.lspet_people(tmp_path / "coco-mini-train")
    import cv2
    (tmp_path / "c128" / "images" / "train2017").mkdir(parents=True)
    (tmp_path / "c128" / "labels" / "train2017").mkdir(parents=True)
    for stem in ("000000000036", "000000000009"):
        cv2.imwrite(str(tmp_path / "c128" / "images" / "train2017" / f"{stem}.jpg"),
                    np.zeros((200, 100, 3), np.uint8))
        (tmp_path / "c128" / "labels" / "train2017" / f"{stem}.txt").write_text(
            "0 0.5 0.5 0.5 0.6\n2 0.5 0.5 0.1 0.1\n0 0.5 0.5 0.05 0.05\n")
    people = sources.coco128_people(tmp_path / "c128")
    assert [p.uid for p in people] == ["coco128:000000000009:0"]     # not id 36, not tiny
    np.testing.assert_allclose(people[0].box, [25, 40, 50, 120])


def test_lspet_fixture_people_and_split():
    people = sources.lspet_people(TRAIN_DATA)
    assert len(people) == 4 and all(p.human is not None for p in people)
    p = people[0]
    lab = p.human[:, 2] > 0
    assert lab.sum() == 12 and not lab[:5].any()
    x, y, w, h = p.box                              # 1.2x the joint box holds every joint
    assert (p.human[lab, 0] > x).all() and (p.human[lab, 0] < x + w).all()
    assert (p.human[lab, 1] > y).all() and (p.human[lab, 1] < y + h).all()
    train, val = split_people(people, 0.25)
    assert len(val) >= 1 and len(train) + len(val) == 4
    assert split_people(people, 0.25)[1] == val                # stable


def test_dataset_is_deterministic_per_seed_epoch_index():
    people = _fixture_people()
    ds = PoseTrainDataset(people, INPUT, 1.0, AugmentConfig(), seed=5)
    a = ds[1]
    b = ds[1]
    assert all(torch.equal(u, v) for u, v in zip(a, b))
    assert a[0].shape == (3, 64, 48) and a[1].shape == (17, 16, 12) and a[2].shape == (17,)
    # joints as (u, v) in [0, 1] of the crop: the Gaussian peaks sit at u * W - 0.5 input
    # pixels, mapped to the heatmap as the official crop matrices do
    from core.training.objectives import input_to_heatmap
    assert a[3].shape == (17, 2)
    on = a[2] > 0
    peak = a[1].flatten(1).argmax(1)
    px = torch.stack([peak % 12, peak // 12], 1).float()
    expect = input_to_heatmap(a[3] * torch.tensor([48.0, 64.0]) - 0.5, INPUT)
    assert on.any() and ((px[on] - expect[on]).abs() <= 0.5 + 1e-4).all()
    ds.set_epoch(1)
    c = ds[1]
    assert not torch.equal(a[0], c[0])


# ------------------------------------------------------------------------- training
def test_a_few_steps_lower_the_loss_on_real_samples(one_thread):
    torch.manual_seed(0)
    people = _fixture_people()
    ds = PoseTrainDataset(people, INPUT, 1.0, NO_AUGMENT)
    x, y, w, _ = (torch.stack(t) for t in zip(*[ds[i] for i in range(len(ds))]))
    from core.models import build_model
    model = build_model(get_train_config(MICRO))
    init_weights(model)
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    crit = JointsMSELoss()
    losses = []
    for _ in range(40):
        loss = crit(model(x), y, w)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.6 * losses[0], losses[::8]


def _micro_config(out, **kw) -> TrainConfig:
    base = dict(out=str(out), model=MICRO, epochs=1, batch_size=2, lr=2e-3, workers=0,
                threads=1, val_fraction=0.25, progress=False, warmup_epochs=0.0)
    base.update(kw)
    return TrainConfig(**base)


def test_checkpoint_round_trip_and_resume(tmp_path, one_thread):
    from core.models import load_weights
    from core.training.trainer import train
    people = _fixture_people()
    out = tmp_path / "run"
    logs: list[str] = []
    res = train(_micro_config(out), people, log=logs.append)
    assert res.epochs_run == 1 and len(res.history) == 1
    for name in ("model.pth", "best.pth", "last.pth", "last.ckpt", "history.json", "run.json"):
        assert (out / name).is_file(), name
    hist = json.loads((out / "history.json").read_text())
    assert hist[0]["epoch"] == 1 and hist[0]["val_loss"] is not None
    loaded = load_weights(out / "model.pth")
    assert loaded.config == TRAIN_CONFIGS[MICRO]
    assert loaded.meta["epoch"] == 1 and loaded.meta["trained_by"].startswith("transpose-studio")
    state = torch.load(out / "last.ckpt", weights_only=True)
    for k, v in loaded.model.state_dict().items():
        assert torch.equal(v, state["model"][k]), k

    # the same --out without --resume is refused; with it, training goes on at epoch 2
    with pytest.raises(InputError, match="--resume"):
        train(_micro_config(out, epochs=2), people, log=logs.append)
    res2 = train(_micro_config(out, epochs=2, resume=True), people, log=logs.append)
    assert res2.epochs_run == 1
    hist = json.loads((out / "history.json").read_text())
    assert [h["epoch"] for h in hist] == [1, 2]
    assert hist[0] == res.history[0]
    state2 = torch.load(out / "last.ckpt", weights_only=True)
    assert state2["epoch"] == 1 and state2["scheduler"]["last_epoch"] == 2 * state["scheduler"][
        "last_epoch"]
    assert any("resuming" in m for m in logs)
    # a TransPoseConfig works as well as a name; a different one cannot resume this run
    cfg = TRAIN_CONFIGS[MICRO].replace(name="mine", d_model=32)
    assert _micro_config(out, model=cfg).model_config() is cfg
    assert json.loads(json.dumps(_micro_config(out, model=cfg).to_dict()))["model"]["d_model"] == 32
    tr = Trainer(_micro_config(out, epochs=3, resume=True, model_overrides={"d_model": 32}),
                 people[:3], people[3:], log=logs.append)
    with pytest.raises(InputError, match="model config"):
        tr.resume()


@pytest.mark.timeout(90)
def test_training_with_worker_processes(tmp_path, one_thread):
    """Forked DataLoader workers after OpenCV ran multi-threaded in this process (its
    thread pool does not survive fork: this used to hang)."""
    import cv2
    cv2.setNumThreads(2)
    cv2.GaussianBlur(np.zeros((512, 512, 3), np.uint8), (0, 0), 3)
    from core.training.trainer import train
    res = train(_micro_config(tmp_path / "w", workers=1), _fixture_people(), log=lambda m: None)
    assert res.history[0]["images"] == 2


def test_cli_train_then_predict(tmp_path, capsys, one_thread):
    import main
    out = tmp_path / "cli"
    rc = main.main(["train", "--out", str(out), "--lspet", str(TRAIN_DATA), "--teacher", "none",
                    "--config", MICRO, "--epochs", "1", "--batch-size", "2", "--workers", "0",
                    "--threads", "1", "--val-fraction", "0.25", "--no-progress"])
    assert rc == 0
    assert (out / "model.pth").is_file() and (out / "labels.json").is_file()
    report = json.loads((out / "labels.json").read_text())
    assert report["sources"]["lspet"]["people"] == 4
    image = sorted((TRAIN_DATA / "images").glob("*.jpg"))[0]
    capsys.readouterr()
    rc = main.main(["predict", str(image), "--weights", str(out / "model.pth"),
                    "--device", "cpu"])
    assert rc == 0
    assert "left_shoulder" in capsys.readouterr().out
    # coco128/frames need a teacher
    assert main.main(["train", "--out", str(out / "x"), "--coco128", str(tmp_path),
                      "--teacher", "none"]) == 1


def test_init_from_weights_starts_a_new_schedule(tmp_path, one_thread):
    from core.models import load_weights
    from core.training.trainer import train
    people = _fixture_people()
    first = train(_micro_config(tmp_path / "a"), people, log=lambda m: None)
    # --init takes the file's configuration (model= is ignored) and its weights
    tr = Trainer(_micro_config(tmp_path / "b", model="tp-r-tiny", init=str(first.model_path)),
                 people[:3], people[3:], log=lambda m: None)
    assert tr.model_config == TRAIN_CONFIGS[MICRO]
    start = load_weights(first.model_path).model.state_dict()
    for k, v in tr.model.state_dict().items():
        assert torch.equal(v, start[k]), k
    import main
    rc = main.main(["train", "--out", str(tmp_path / "c"), "--lspet", str(TRAIN_DATA),
                    "--teacher", "none", "--init", str(first.model_path), "--config",
                    "tp-r-small", "--no-progress"])
    assert rc == 1                     # a --config that contradicts the file is refused


def test_learning_curve_report_chains_runs(tmp_path, capsys):
    from core.training import report
    for name, epochs in (("a", 2), ("b", 1)):
        (tmp_path / name).mkdir()
        rows = [{"epoch": e + 1, "train_loss": 1.0 / (e + 1), "val_loss": 0.5, "val_pck05": 0.1 * e,
                 "lr": 1e-3, "time_s": 10.0} for e in range(epochs)]
        (tmp_path / name / "history.json").write_text(json.dumps(rows))
    label, rows = report.load_history(f"{tmp_path / 'a'}+{tmp_path / 'b'}")
    assert label == "a+b" and [r["epoch"] for r in rows] == [1, 2, 3]
    assert report.main([str(tmp_path / "a")]) == 0
    assert "| 2 | 0.5 | 0.5 | 0.100 |" in capsys.readouterr().out
    with pytest.raises(InputError, match="history.json: no such file"):
        report.load_history(str(tmp_path / "missing"))
