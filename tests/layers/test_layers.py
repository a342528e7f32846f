"""The layer check (deploy/cmake/check_layers.cmake) and the graph gateway/README.md draws.

The configure step runs the check over every target and writes <build>/layers.txt; these tests
show that the check fails on a layer violation (in a fake tree and in the real one, with one file
changed) and that the graph in gateway/README.md is the one the build holds.
"""
import os
import pathlib
import re
import subprocess
import tempfile
import unittest

SOURCE_DIR = pathlib.Path(os.environ.get("RDG_SOURCE_DIR", pathlib.Path(__file__).parents[2]))
BUILD_DIR = pathlib.Path(os.environ.get("RDG_BIN_DIR", SOURCE_DIR / "build" / "bin")).parent
CHECKER = SOURCE_DIR / "deploy" / "cmake" / "check_layers.cmake"


def run_check(manifest, source_dir, graph_out=None):
    cmd = ["cmake", f"-DMANIFEST={manifest}", f"-DSOURCE_DIR={source_dir}"]
    if graph_out is not None:
        cmd.append(f"-DGRAPH_OUT={graph_out}")
    cmd += ["-P", str(CHECKER)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


def write_manifest(path, targets, order=None):
    """targets: {name: (files, public, private)}; order: the layers, lowest first (default: the
    targets in the order given)."""
    lines = [f'set(RDG_TARGETS "{";".join(targets)}")',
             f'set(RDG_LAYER_ORDER "{";".join(order or ["rdg_proto", *targets])}")',
             'set(RDG_SERVER_ONLY "rdg_storage")']
    for name, (files, public, private) in targets.items():
        lines.append(f'set(RDG_FILES_{name} "{";".join(files)}")')
        lines.append(f'set(RDG_PUBLIC_{name} "{";".join(public)}")')
        lines.append(f'set(RDG_PRIVATE_{name} "{";".join(private)}")')
    path.write_text("\n".join(lines) + "\n")


class FakeTreeTest(unittest.TestCase):
    """Three layers: low <- mid <- top, mid using low privately."""

    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.root = pathlib.Path(self.tmp.name)
        for f, text in {
            "low/low.h": "#pragma once\n#include <string>\n#include \"absl/strings/str_cat.h\"\n",
            "low/low.cc": '#include "low/low.h"\n',
            "mid/mid.h": '#pragma once\n#include "rdg/v1/common.pb.h"\n',
            "mid/mid.cc": '#include "mid/mid.h"\n#include "low/low.h"\n',
            "top/top.cc": '#include "mid/mid.h"\n',
        }.items():
            (self.root / f).parent.mkdir(parents=True, exist_ok=True)
            (self.root / f).write_text(text)
        self.targets = {
            "low": (["low/low.h", "low/low.cc"], [], []),
            "mid": (["mid/mid.h", "mid/mid.cc"], ["rdg_proto"], ["low"]),
            "top": (["top/top.cc"], [], ["mid"]),
        }
        self.manifest = self.root / "manifest.cmake"

    def tearDown(self):
        self.tmp.cleanup()

    def check(self, order=None):
        write_manifest(self.manifest, self.targets, order)
        return run_check(self.manifest, self.root, self.root / "layers.txt")

    def write(self, path, text):
        (self.root / path).parent.mkdir(parents=True, exist_ok=True)
        (self.root / path).write_text(text)

    def test_clean_tree_passes_and_draws_layers(self):
        r = self.check()
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual((self.root / "layers.txt").read_text(),
                         "0  low: -\n0  rdg_proto: -\n1  mid: rdg_proto | private: low\n2  top: - | private: mid\n")

    def test_including_a_layer_above_fails(self):
        (self.root / "low/low.cc").write_text('#include "low/low.h"\n#include "mid/mid.h"\n')
        r = self.check()
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("low/low.cc (low) includes mid/mid.h of mid, which low does not use",
                      r.stderr)

    def test_a_private_dependency_is_not_passed_on(self):
        (self.root / "top/top.cc").write_text('#include "mid/mid.h"\n#include "low/low.h"\n')
        r = self.check()
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("top/top.cc (top) includes low/low.h of low", r.stderr)
        # Once mid passes low on (its header includes low's), top may use it.
        (self.root / "mid/mid.h").write_text(
            '#pragma once\n#include "rdg/v1/common.pb.h"\n#include "low/low.h"\n')
        self.targets["mid"] = (self.targets["mid"][0], ["rdg_proto", "low"], [])
        r = self.check()
        self.assertEqual(r.returncode, 0, r.stderr)

    def test_a_header_nobody_owns_fails(self):
        (self.root / "low/stray.h").write_text("#pragma once\n")
        (self.root / "low/low.cc").write_text('#include "low/low.h"\n#include "low/stray.h"\n')
        r = self.check()
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("includes low/stray.h, which no target owns", r.stderr)

    def test_a_cycle_fails(self):
        self.targets["low"] = (self.targets["low"][0], [], ["top"])
        r = self.check()
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("low links top, a layer above it", r.stderr)
        self.assertIn("a cycle among", r.stderr)

    def test_a_link_upward_fails_even_with_its_include(self):
        """Adding the link and the include is not enough: the declared order says who is above."""
        self.write("low/low.cc", '#include "low/low.h"\n#include "mid/mid.h"\n')
        self.targets["low"] = (self.targets["low"][0], [], ["mid"])
        r = self.check(order=["rdg_proto", "low", "mid", "top"])
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("low links mid, a layer above it", r.stderr)
        # A target missing from the order is named too.
        r = self.check(order=["rdg_proto", "low", "mid"])
        self.assertIn("top is not in RDG_LAYER_ORDER", r.stderr)

    def test_an_include_relative_to_the_folder_fails(self):
        """The compiler would find these without any include tree: they are refused."""
        for text in ('#include "../mid/mid.h"\n', '#include "low.h"\n',
                     '#include "./low.h"\n'):
            self.write("low/low.cc", text)
            r = self.check()
            self.assertNotEqual(r.returncode, 0, text)
            self.assertIn("relative to its folder", r.stderr)

    def test_includes_the_check_cannot_read_are_refused(self):
        """A macro, a comment before the directive, a continuation or an absolute path could hide
        an include from a layer above: all refused."""
        for text in ('#define H "mid/mid.h"\n#include H\n', '/**/#include "mid/mid.h"\n',
                     '#include \\\n  "mid/mid.h"\n', '%:include "mid/mid.h"\n'):
            self.write("low/low.cc", '#include "low/low.h"\n' + text)
            r = self.check()
            self.assertNotEqual(r.returncode, 0, text)
            self.assertIn("has an include the check cannot read", r.stderr, text)
        self.write("low/low.cc", f'#include "{self.root}/mid/mid.h"\n')
        r = self.check()
        self.assertIn("relative to its folder", r.stderr)  # absolute paths: the same refusal

    def test_a_link_to_an_undeclared_or_server_only_target_fails(self):
        self.targets["top"] = (["top/top.cc"], [], ["mid", "rdg_api_alias"])
        r = self.check()
        self.assertIn("top links rdg_api_alias, which is not a declared target", r.stderr)
        self.write("storage/store.h", "#pragma once\n")
        self.write("clients/c.cc", '#include "storage/store.h"\n')
        self.targets = {"rdg_storage": (["storage/store.h"], [], []),
                        "c": (["clients/c.cc"], [], ["rdg_storage"])}
        r = self.check()
        self.assertIn("c (clients/) links rdg_storage, which only the server may use", r.stderr)

    def test_angle_bracket_includes_of_project_headers_are_checked(self):
        self.write("low/low.cc", '#include "low/low.h"\n#include <mid/mid.h>\n')
        r = self.check()
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("includes mid/mid.h of mid, which low does not use", r.stderr)

    def test_what_is_passed_on_must_be_in_a_header(self):
        # mid includes low only from its .cc: linking low PUBLIC would widen mid's users.
        self.targets["mid"] = (self.targets["mid"][0], ["rdg_proto", "low"], [])
        r = self.check()
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("mid passes low on (PUBLIC) but none of its headers", r.stderr)

    def test_gateway_and_clients_never_use_each_other(self):
        self.write("gateway/g.h", "#pragma once\n")
        self.write("clients/c.cc", '#include "gateway/g.h"\n')
        self.write("storage/s.cc", '#include "gateway/g.h"\n')
        self.targets = {"g": (["gateway/g.h"], [], []), "c": (["clients/c.cc"], [], ["g"]),
                        "s": (["storage/s.cc"], [], ["g"])}
        r = self.check()
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("c (clients/) links g of gateway/, which it may not", r.stderr)
        self.assertIn("s (storage/) links g of gateway/, which it may not", r.stderr)


class RealTreeTest(unittest.TestCase):
    def manifest(self):
        m = BUILD_DIR / "layers-manifest.cmake"
        if not m.exists():
            self.fail(f"{m} is missing: configure the build first")
        return m

    def test_readme_draws_the_graph_the_build_holds(self):
        built = (BUILD_DIR / "layers.txt").read_text()
        readme = (SOURCE_DIR / "gateway" / "README.md").read_text()
        m = re.search(r"<!-- layers:begin -->\n```\n(.*?)```\n<!-- layers:end -->", readme, re.S)
        self.assertIsNotNone(m, "gateway/README.md has no layers block")
        self.assertEqual(m.group(1), built,
                         "gateway/README.md's layer graph differs from <build>/layers.txt: "
                         "copy the file's text into the block")

    def test_clients_use_no_gateway_or_server_storage_library(self):
        """What every client target may reach, followed through every link: never a target of
        gateway/, nor the server's stores."""
        text = self.manifest().read_text()
        values = dict(re.findall(r'set\((RDG_\S+) "([^"]*)"\)', text))
        files = {k[len("RDG_FILES_"):]: v.split(";") for k, v in values.items()
                 if k.startswith("RDG_FILES_")}
        folder = {t: f[0].split("/")[0] for t, f in files.items() if f and f[0]}

        def links(t):
            return [d for kind in ("PUBLIC", "PRIVATE")
                    for d in values.get(f"RDG_{kind}_{t}", "").split(";") if d in folder]

        clients = [t for t, f in folder.items() if f == "clients"]
        self.assertIn("rdg-clinic", clients)
        for t in clients:
            seen, todo = set(), [t]
            while todo:
                for d in links(todo.pop()):
                    if d not in seen:
                        seen.add(d)
                        todo.append(d)
            self.assertFalse({d for d in seen if folder[d] == "gateway"}, t)
            self.assertNotIn("rdg_storage", seen, t)

    def test_generated_files_are_nobodys(self):
        """A build folder inside the checkout (build/, the CI's) holds generated sources: they
        are not the repository's and must not be checked (they do not exist when configuring
        from a fresh clone)."""
        files = re.findall(r'set\(RDG_FILES_\S+ "([^"]*)"\)', self.manifest().read_text())
        build = os.path.relpath(BUILD_DIR.resolve(), SOURCE_DIR.resolve())
        for f in ";".join(files).split(";"):
            if f:
                self.assertFalse(f.startswith(build + "/"), f)
                self.assertTrue((SOURCE_DIR / f).is_file(), f)

    def test_the_real_tree_refuses_an_include_from_above(self):
        """routing/ (a low layer) including api/gateway.h fails, naming both."""
        manifest = self.manifest()
        files = re.findall(r'set\(RDG_FILES_\S+ "([^"]*)"\)', manifest.read_text())
        with tempfile.TemporaryDirectory() as tmp:
            root = pathlib.Path(tmp)
            for f in ";".join(files).split(";"):
                if not f:
                    continue
                (root / f).parent.mkdir(parents=True, exist_ok=True)
                (root / f).symlink_to(SOURCE_DIR / f)
            router = root / "gateway/routing/router.cc"
            text = (SOURCE_DIR / "gateway/routing/router.cc").read_text()
            router.unlink()
            router.write_text('#include "gateway/api/gateway.h"\n' + text)
            clean = run_check(manifest, SOURCE_DIR)
            self.assertEqual(clean.returncode, 0, clean.stderr)
            r = run_check(manifest, root)
            self.assertNotEqual(r.returncode, 0)
            self.assertIn("gateway/routing/router.cc (rdg_routing) includes gateway/api/gateway.h "
                          "of rdg_api, which rdg_routing does not use", r.stderr)
            # Nor from the folder beside it, which the compiler would find on its own.
            router.write_text('#include "../api/request_limits.h"\n' + text)
            r = run_check(manifest, root)
            self.assertNotEqual(r.returncode, 0)
            self.assertIn("includes ../api/request_limits.h relative to its folder", r.stderr)


if __name__ == "__main__":
    unittest.main()
