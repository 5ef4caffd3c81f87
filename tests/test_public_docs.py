"""Everything a user reaches from `import vec2text_c` says what it does: the package and its
subpackages have docstrings, and so has every public function, class, method and property."""
import importlib
import inspect

import vec2text_c


def _public(mod):
    return getattr(mod, "__all__", None) or [n for n in dir(mod) if not n.startswith("_")]


def test_every_public_name_has_a_docstring():
    missing, seen = [], set()
    mods = [vec2text_c] + [importlib.import_module(f"vec2text_c.{m}") for m in ("align", "metrics", "train")]
    for mod in mods:
        for name in _public(mod):
            obj = getattr(mod, name, None)
            if obj is None or id(obj) in seen or inspect.ismodule(obj) or not callable(obj):
                continue
            seen.add(id(obj))
            if not (inspect.getdoc(obj) or "").strip():
                missing.append(f"{mod.__name__}.{name}")
            if inspect.isclass(obj):
                for attr, member in vars(obj).items():
                    if attr.startswith("_") and attr != "__call__":
                        continue
                    fn = member.fget if isinstance(member, property) else getattr(member, "__func__", member)
                    if (callable(fn) or isinstance(member, property)) and not (getattr(fn, "__doc__", None) or "").strip():
                        missing.append(f"{mod.__name__}.{name}.{attr}")
    assert len(seen) > 40  # the walk reached the package's surface
    assert missing == []


def test_the_package_and_its_subpackages_say_how_to_start():
    for mod in (vec2text_c, vec2text_c.align, vec2text_c.metrics, vec2text_c.train):
        doc = (mod.__doc__ or "").strip()
        assert len(doc.splitlines()) >= 3, mod.__name__
    assert "invert_strings" in vec2text_c.__doc__ and "load_pretrained_corrector" in vec2text_c.__doc__
