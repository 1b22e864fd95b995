#!/usr/bin/env python3
"""OCI image layout and tar helpers for gcr's registry test fixtures.

Independent of gcr's own code on purpose: the fixtures build test images with
umoci and skopeo, and use this script only where those tools cannot express
what a test needs (hand-written tar entries, layers appended to an existing
umoci image, image indexes with attestation entries, malicious layers).
Python's standard library only (tarfile, gzip, hashlib, json); zstd through
the `zstd` command.

Subcommands (see main() for arguments):
  init LAYOUT                          create an empty OCI layout
  image LAYOUT TAG --layer TAR[:COMP]  new single-platform image from tar files
  append LAYOUT TAG TAR[:COMP]         add one layer on top of an image
  index LAYOUT TAG --entry TAG ...     image index over images in the layout
  layers-extra OUT.tar                 the hand-written layer of the "layers" image
  malicious OUTDIR                     malicious tar files + cases.json
  verify LAYOUT TAG                    every blob's digest and size, every layer a complete tar
"""

import argparse
import gzip
import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
LAYER_TYPES = {
    "none": "application/vnd.oci.image.layer.v1.tar",
    "gzip": "application/vnd.oci.image.layer.v1.tar+gzip",
    "zstd": "application/vnd.oci.image.layer.v1.tar+zstd",
}
REF_NAME = "org.opencontainers.image.ref.name"
# A fixed timestamp keeps configs and hand-written tars byte-identical across builds.
FIXED_TIME = "2024-01-02T03:04:05Z"
FIXED_EPOCH = 1704164645


# ---------------------------------------------------------------- layout basics


def blob_path(layout, digest):
    algo, hexpart = digest.split(":", 1)
    return os.path.join(layout, "blobs", algo, hexpart)


def write_blob(layout, data, media_type):
    """Stores bytes as a blob; returns its descriptor."""
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    path = blob_path(layout, digest)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if not os.path.exists(path):
        with open(path + ".tmp", "wb") as f:
            f.write(data)
        os.rename(path + ".tmp", path)
    return {"mediaType": media_type, "digest": digest, "size": len(data)}


def write_json_blob(layout, obj, media_type):
    return write_blob(layout, json.dumps(obj, separators=(",", ":")).encode(), media_type)


def read_json_blob(layout, desc):
    with open(blob_path(layout, desc["digest"]), "rb") as f:
        return json.load(f)


def init_layout(layout):
    os.makedirs(os.path.join(layout, "blobs", "sha256"), exist_ok=True)
    marker = os.path.join(layout, "oci-layout")
    if not os.path.exists(marker):
        with open(marker, "w") as f:
            json.dump({"imageLayoutVersion": "1.0.0"}, f)
    index = os.path.join(layout, "index.json")
    if not os.path.exists(index):
        save_index(layout, {"schemaVersion": 2, "manifests": []})


def load_index(layout):
    with open(os.path.join(layout, "index.json")) as f:
        return json.load(f)


def save_index(layout, index):
    path = os.path.join(layout, "index.json")
    with open(path + ".tmp", "w") as f:
        json.dump(index, f, separators=(",", ":"))
    os.rename(path + ".tmp", path)


def find_ref(layout, tag):
    for desc in load_index(layout)["manifests"]:
        if desc.get("annotations", {}).get(REF_NAME) == tag:
            return desc
    raise SystemExit(f"ocitool: no tag {tag!r} in {layout}")


def set_ref(layout, tag, desc):
    index = load_index(layout)
    kept = [d for d in index["manifests"] if d.get("annotations", {}).get(REF_NAME) != tag]
    desc = dict(desc)
    desc["annotations"] = dict(desc.get("annotations", {}), **{REF_NAME: tag})
    index["manifests"] = kept + [desc]
    save_index(layout, index)


# ---------------------------------------------------------------- layers


def layer_blob(layout, tar_path, compression):
    """Compresses a tar file as asked, stores it; returns (descriptor, diff_id)."""
    with open(tar_path, "rb") as f:
        raw = f.read()
    diff_id = "sha256:" + hashlib.sha256(raw).hexdigest()
    if compression == "gzip":
        data = gzip.compress(raw, compresslevel=6, mtime=0)
    elif compression == "zstd":
        data = subprocess.run(["zstd", "-q", "-c", "-3"], input=raw, stdout=subprocess.PIPE, check=True).stdout
    elif compression == "none":
        data = raw
    else:
        raise SystemExit(f"ocitool: unknown compression {compression!r}")
    return write_blob(layout, data, LAYER_TYPES[compression]), diff_id


def split_layer_arg(arg):
    path, _, comp = arg.partition(":")
    return path, comp or "gzip"


def cmd_image(a):
    init_layout(a.layout)
    layers, diff_ids, history = [], [], []
    for arg in a.layer:
        path, comp = split_layer_arg(arg)
        desc, diff_id = layer_blob(a.layout, path, comp)
        layers.append(desc)
        diff_ids.append(diff_id)
        history.append({"created": FIXED_TIME, "created_by": f"ocitool.py: {os.path.basename(path)} ({comp})"})
    config = {
        "created": FIXED_TIME,
        "architecture": a.arch,
        "os": a.os,
        "config": {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": history,
    }
    if a.variant:
        config["variant"] = a.variant
    if a.cmd:
        config["config"]["Cmd"] = a.cmd
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": write_json_blob(a.layout, config, OCI_CONFIG),
        "layers": layers,
    }
    set_ref(a.layout, a.tag, write_json_blob(a.layout, manifest, OCI_MANIFEST))


def cmd_append(a):
    """Adds a layer on top of an existing image: layer blob, config diff_ids and
    history, manifest, and the tag in index.json are all rewritten with fresh digests."""
    old = find_ref(a.layout, a.tag)
    manifest = read_json_blob(a.layout, old)
    config = read_json_blob(a.layout, manifest["config"])
    path, comp = split_layer_arg(a.tar)
    desc, diff_id = layer_blob(a.layout, path, comp)
    manifest["layers"].append(desc)
    config["rootfs"]["diff_ids"].append(diff_id)
    config.setdefault("history", []).append(
        {"created": FIXED_TIME, "created_by": a.created_by or f"ocitool.py append {os.path.basename(path)}"}
    )
    manifest["config"] = write_json_blob(a.layout, config, manifest["config"]["mediaType"])
    new = write_json_blob(a.layout, manifest, old.get("mediaType", OCI_MANIFEST))
    set_ref(a.layout, a.tag, new)


def cmd_index(a):
    """Builds an OCI image index over tagged images of the layout. Each entry gets
    the platform from its config. --attestation-for TAG adds an entry shaped like
    BuildKit's attestation manifests: platform unknown/unknown, annotations
    vnd.docker.reference.type=attestation-manifest and vnd.docker.reference.digest."""
    entries = []
    for tag in a.entry:
        desc = find_ref(a.layout, tag)
        manifest = read_json_blob(a.layout, desc)
        config = read_json_blob(a.layout, manifest["config"])
        platform = {"architecture": config["architecture"], "os": config["os"]}
        if config.get("variant"):
            platform["variant"] = config["variant"]
        entries.append({"mediaType": desc["mediaType"], "digest": desc["digest"], "size": desc["size"], "platform": platform})
    if a.attestation_for:
        subject = find_ref(a.layout, a.attestation_for)
        statement = {
            "_type": "https://in-toto.io/Statement/v0.1",
            "predicateType": "https://spdx.dev/Document",
            "subject": [{"name": "gcr-test", "digest": {"sha256": subject["digest"].split(":", 1)[1]}}],
            "predicate": {"spdxVersion": "SPDX-2.3", "name": "gcr-test-sbom"},
        }
        raw = json.dumps(statement, separators=(",", ":")).encode()
        layer = write_blob(a.layout, raw, "application/vnd.in-toto+json")
        layer["annotations"] = {"in-toto.io/predicate-type": "https://spdx.dev/Document"}
        config = {
            "architecture": "unknown",
            "os": "unknown",
            "config": {},
            "rootfs": {"type": "layers", "diff_ids": [layer["digest"]]},
        }
        manifest = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": write_json_blob(a.layout, config, OCI_CONFIG),
            "layers": [layer],
        }
        desc = write_json_blob(a.layout, manifest, OCI_MANIFEST)
        desc["platform"] = {"architecture": "unknown", "os": "unknown"}
        desc["annotations"] = {
            "vnd.docker.reference.digest": subject["digest"],
            "vnd.docker.reference.type": "attestation-manifest",
        }
        entries.append(desc)
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries}
    set_ref(a.layout, a.tag, write_json_blob(a.layout, index, OCI_INDEX))


# ---------------------------------------------------------------- hand-written tars


def entry(name, kind=tarfile.REGTYPE, data=b"", mode=None, linkname="", uid=0, gid=0, devmajor=0, devminor=0):
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mtime = FIXED_EPOCH
    info.uid, info.gid = uid, gid
    info.uname = info.gname = ""
    info.linkname = linkname
    info.devmajor, info.devminor = devmajor, devminor
    if mode is None:
        mode = 0o755 if kind == tarfile.DIRTYPE else 0o777 if kind == tarfile.SYMTYPE else 0o644
    info.mode = mode
    info.size = len(data) if kind == tarfile.REGTYPE else 0
    return info, (io.BytesIO(data) if kind == tarfile.REGTYPE else None)


def write_tar(path, entries, fmt=tarfile.PAX_FORMAT):
    tmp = path + ".tmp"
    with tarfile.open(tmp, "w", format=fmt) as tar:
        for info, fileobj in entries:
            tar.addfile(info, fileobj)
    os.rename(tmp, path)


DIR, REG, SYM, LNK, FIFO, CHR = (
    tarfile.DIRTYPE,
    tarfile.REGTYPE,
    tarfile.SYMTYPE,
    tarfile.LNKTYPE,
    tarfile.FIFOTYPE,
    tarfile.CHRTYPE,
)

GNU_LONG_NAME = "gnu-long/" + "g" * 120 + ".txt"


def cmd_layers_extra(a):
    """Layer 3 of the "layers" image, written entry by entry because umoci cannot
    express these: an opaque marker that comes AFTER a new file of the same
    directory (opaque hides lower layers only); hard links whose target lives in
    layer 1, one with a plain and one with an absolute-looking link name; a GNU
    ('L' record) long name (layer 1 has the PAX ones); numeric ownership; a
    character device. GNU format, so the long name uses the GNU extension."""
    entries = [
        entry("opq/", DIR),
        entry("opq/new", REG, b"new in layer 3\n"),
        entry("opq/.wh..wh..opq", REG, mode=0o000),
        entry("etc/l1-hardlink", LNK, linkname="etc/l1file"),
        entry("etc/l1-abs-hardlink", LNK, linkname="/etc/l1file"),
        entry("gnu-long/", DIR),
        entry(GNU_LONG_NAME, REG, b"gnu long name\n"),
        entry("owned", REG, b"owned by 1234:5678\n", mode=0o640, uid=1234, gid=5678),
        entry("devnull", CHR, mode=0o666, devmajor=1, devminor=3),
    ]
    write_tar(a.out, entries, fmt=tarfile.GNU_FORMAT)


# Every malicious case writes only names starting with "gcr-escape" outside the
# output, so a contained-extraction bug leaves a harmless, findable marker
# instead of clobbering a real host file. "layers" lists the tars of each image.
MALICIOUS = {
    # A name that climbs out of the output directory.
    "dotdot": [[entry("../gcr-escape-dotdot", REG, b"escaped via ..\n"), entry("ok", REG, b"ok\n")]],
    # An absolute name: must land inside the output (or be refused), never at /tmp.
    "absolute": [[entry("/tmp/gcr-escape-absolute", REG, b"escaped via absolute name\n")]],
    # A symlink to an outside directory, then a file written through it.
    "symlink-dir": [[entry("evil", SYM, linkname="/tmp"), entry("evil/gcr-escape-symlink", REG, b"through symlink\n")]],
    # A chain of symlinks that only points out once resolved twice.
    "symlink-chain": [
        [
            entry("a", SYM, linkname="b"),
            entry("b", SYM, linkname="../../../../../../../../tmp"),
            entry("a/gcr-escape-chain", REG, b"through a symlink chain\n"),
        ]
    ],
    # Layer 1 plants the symlink, layer 2 writes through it.
    "symlink-layer": [
        [entry("evil", SYM, linkname="/tmp")],
        [entry("evil/gcr-escape-layer", REG, b"through a symlink from a lower layer\n")],
    ],
    # Hard links to host files: absolute (means <root>/etc/passwd per OCI) and relative-out.
    "hardlink-out": [
        [
            entry("pw-abs", LNK, linkname="/etc/passwd"),
            entry("pw-rel", LNK, linkname="../../../../../../../../etc/passwd"),
        ]
    ],
    # Whiteouts that name a parent: ".wh.." + "." is a whiteout of "..".
    "whiteout-dotdot": [[entry("sub/", DIR), entry("sub/.wh...", REG, mode=0), entry(".wh...", REG, mode=0)]],
    # A whiteout placed outside the output ("../.wh.x" removes ../x).
    "whiteout-outside": [[entry("../.wh.gcr-escape-victim", REG, mode=0)]],
}


def cmd_malicious(a):
    os.makedirs(a.outdir, exist_ok=True)
    cases = {}
    for name, layers in MALICIOUS.items():
        files = []
        for i, entries in enumerate(layers, 1):
            path = os.path.join(a.outdir, f"{name}-{i}.tar")
            write_tar(path, entries)
            files.append(os.path.basename(path))
        cases[name] = files
    with open(os.path.join(a.outdir, "cases.json"), "w") as f:
        json.dump(cases, f, indent=1)


def layer_bytes(layout, desc):
    with open(blob_path(layout, desc["digest"]), "rb") as f:
        data = f.read()
    mt = desc["mediaType"]
    if mt.endswith("+gzip") or mt.endswith(".tar.gzip"):
        return gzip.decompress(data)
    if mt.endswith("+zstd"):
        return subprocess.run(["zstd", "-q", "-d", "-c"], input=data, stdout=subprocess.PIPE, check=True).stdout
    return data


def verify_blob(layout, desc):
    with open(blob_path(layout, desc["digest"]), "rb") as f:
        data = f.read()
    algo, want = desc["digest"].split(":", 1)
    got = hashlib.new(algo, data).hexdigest()
    if got != want or len(data) != desc["size"]:
        raise SystemExit(f"ocitool verify: blob {desc['digest']} has digest {algo}:{got}, size {len(data)}")


def verify_manifest(layout, desc, where):
    verify_blob(layout, desc)
    doc = read_json_blob(layout, desc)
    if "manifests" in doc:
        for child in doc["manifests"]:
            verify_manifest(layout, child, where + " > " + child["digest"][:19])
        return
    verify_blob(layout, doc["config"])
    for layer in doc["layers"]:
        verify_blob(layout, layer)
        if "tar" not in layer["mediaType"]:
            continue
        raw = layer_bytes(layout, layer)
        # A complete tar is whole 512-byte blocks ending in two zero blocks. (umoci 0.4.7's
        # `insert` drops the padding and end blocks when its last entry is a file with data.)
        if len(raw) % 512 or raw[-1024:] != bytes(1024):
            raise SystemExit(f"ocitool verify: {where}: layer {layer['digest']} is not a complete tar ({len(raw)} bytes)")
        with tarfile.open(fileobj=io.BytesIO(raw)) as tar:
            for _ in tar:
                pass


def cmd_verify(a):
    verify_manifest(a.layout, find_ref(a.layout, a.tag), f"{a.layout}:{a.tag}")


def main():
    p = argparse.ArgumentParser(prog="ocitool.py")
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("init")
    s.add_argument("layout")
    s.set_defaults(fn=lambda a: init_layout(a.layout))
    s = sub.add_parser("image")
    s.add_argument("layout")
    s.add_argument("tag")
    s.add_argument("--layer", action="append", default=[], help="TAR[:gzip|zstd|none]")
    s.add_argument("--arch", default="amd64")
    s.add_argument("--os", default="linux")
    s.add_argument("--variant", default="")
    s.add_argument("--cmd", nargs="*", default=None)
    s.set_defaults(fn=cmd_image)
    s = sub.add_parser("append")
    s.add_argument("layout")
    s.add_argument("tag")
    s.add_argument("tar", help="TAR[:gzip|zstd|none]")
    s.add_argument("--created-by", default="")
    s.set_defaults(fn=cmd_append)
    s = sub.add_parser("index")
    s.add_argument("layout")
    s.add_argument("tag")
    s.add_argument("--entry", action="append", default=[])
    s.add_argument("--attestation-for", default="")
    s.set_defaults(fn=cmd_index)
    s = sub.add_parser("layers-extra")
    s.add_argument("out")
    s.set_defaults(fn=cmd_layers_extra)
    s = sub.add_parser("malicious")
    s.add_argument("outdir")
    s.set_defaults(fn=cmd_malicious)
    s = sub.add_parser("verify")
    s.add_argument("layout")
    s.add_argument("tag")
    s.set_defaults(fn=cmd_verify)
    a = p.parse_args()
    a.fn(a)


if __name__ == "__main__":
    sys.exit(main())
