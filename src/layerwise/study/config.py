"""Load, validate and fill in defaults of a study configuration.

The rules live in workflow/schemas/config.schema.yaml (JSON Schema 2020-12), to which
`load_schema` adds the registries' names and the `model` keys only some backbones take (their
records in layerwise.models); the checks the schema cannot express (cross references,
divisibility, sums) follow it here. Every problem is reported as a one-line ConfigError naming
the key, e.g.
``config key experiments[0].model.heads: 0 is not allowed; expected an integer >= 1``.

Usage: ``python -m layerwise.study.config config/config.yaml [config/smoke.yaml ...]``;
``python -m layerwise.study.config --schema`` prints the whole schema, every key described.
This module must stay free of torch and snakemake imports: the Snakefile imports it.
"""

from __future__ import annotations

import copy
import dataclasses
import sys
from pathlib import Path

import jsonschema
import yaml
from jsonschema.exceptions import best_match

from layerwise.errors import ConfigError
from layerwise.data.sources import (DEFAULT_IMAGE_SIDE, LM_SOURCES, SOURCES, TEXT_SOURCES,
                                    TRAINED_TOKENIZERS)
from layerwise.models import BACKBONES
from layerwise.train.runs import run_names

SCHEMA_PATH = Path(__file__).with_name("schema.yaml")

# A dataset root: absolute, or inside the project without '..' (the schema's `root` pattern).
PATH_PATTERN = "^(/.*|(?!(.*/)?\\.\\.(/|$)).+)$"
# A key of the paper's reference values (the schema's `paper_reference` pattern).
REFERENCE_PATTERN = "^[a-z0-9_]+(\\.[a-z0-9_]+)*$"

# Integers are ints only: 40.0 epochs or True heads are rejected, not silently accepted.
_TYPES = jsonschema.Draft202012Validator.TYPE_CHECKER.redefine(
    "integer", lambda _checker, value: isinstance(value, int) and not isinstance(value, bool)
)
Validator = jsonschema.validators.extend(jsonschema.Draft202012Validator, type_checker=_TYPES)

_TYPE_WORDS = {"object": "a mapping", "array": "a list", "string": "a string",
               "boolean": "true or false", "integer": "an integer", "number": "a number"}
_BOUNDS = (("minimum", ">="), ("exclusiveMinimum", ">"), ("maximum", "<="), ("exclusiveMaximum", "<"))


def load_schema(path: str | Path | None = None) -> dict:
    """Read (and check) the configuration schema, by default the workflow's, with the values
    of every key that names an extension filled in from that extension's registry, and the
    `model` keys only some backbones take from their records."""
    with open(path or SCHEMA_PATH, encoding="utf-8") as handle:
        schema = yaml.safe_load(handle)
    for keys, names in _registry_enums().items():
        node = schema
        for key in keys:
            node = node[key]
        node["enum"] = names
    experiment = schema["properties"]["experiments"]["items"]["properties"]
    model = experiment["model"]["properties"]
    for key, fragment in backbone_keys().items():
        if key in model:  # one description per key: the record's or the schema's, not both
            raise ValueError(f"model key {key!r} is both in {path or SCHEMA_PATH} and a "
                             "backbone's record")
        model[key] = copy.deepcopy(fragment)
    for section, fragment in method_sections().items():
        if section in experiment:
            raise ValueError(f"experiment key {section!r} is both in {path or SCHEMA_PATH} and "
                             "a method's settings")
        experiment[section] = fragment
    Validator.check_schema(schema)
    return schema


def backbone_keys() -> dict[str, dict]:
    """The `model` keys the backbones' records declare, each with its schema fragment."""
    keys: dict[str, dict] = {}
    for record in BACKBONES.values():
        for key, fragment in record.keys.items():
            if keys.setdefault(key, fragment) != fragment:  # one key, one meaning
                raise ValueError(f"backbone {record.name} declares model key {key!r} unlike "
                                 "another backbone; share one fragment")
    return keys


def method_sections() -> dict[str, dict]:
    """The experiment sections of the methods with settings, each built from its settings
    class: the class's docstring describes the section, each field's `setting` one key."""
    from layerwise.train.methods import METHODS

    sections: dict[str, dict] = {}
    for record in METHODS.values():
        if record.section is None:
            continue
        cls = record.settings_class
        fragment = {"description": " ".join(cls.__doc__.split()), "type": "object",
                    "additionalProperties": False, "default": {},
                    "properties": {f.name: copy.deepcopy(f.metadata["schema"])
                                   for f in dataclasses.fields(cls)}}
        if sections.setdefault(record.section, fragment) != fragment:  # one section, one class
            raise ValueError(f"method {record.name} reads section {record.section!r} through "
                             "another settings class than the methods sharing it")
    return sections


def _registry_enums() -> dict[tuple[str, ...], list[str]]:
    """Schema nodes (as paths of keys) whose allowed values are the names of a registry."""
    from layerwise.exits.policies import POLICIES
    from layerwise.similarity.measures import CKA_ESTIMATORS
    from layerwise.train.methods import METHODS

    experiment = ("properties", "experiments", "items", "properties")
    return {
        ("properties", "datasets", "additionalProperties", "properties", "source"): list(SOURCES),
        experiment + ("model", "properties", "arch"): list(BACKBONES),
        experiment + ("methods", "items"): list(METHODS),
        ("properties", "analysis", "properties", "cka_estimators", "items"): list(CKA_ESTIMATORS),
        ("properties", "exits", "properties", "policies", "items"): list(POLICIES),
        ("properties", "claims", "properties", "exit_policy"): list(POLICIES),
    }


def key_path(parts) -> str:
    """Render a path like ['experiments', 0, 'model'] as 'experiments[0].model'."""
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _where(parts) -> str:
    return f"config key {key_path(parts)}" if len(parts) else "config top level"


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def describe(schema: dict) -> str:
    """The values a (sub)schema allows, in words: 'an integer >= 1', 'one of: a, b'."""
    if "enum" in schema:
        return "one of: " + ", ".join(str(v) for v in schema["enum"])
    if schema.get("pattern") == PATH_PATTERN:
        return "an absolute path, or a path inside the project without '..'"
    if schema.get("pattern") == REFERENCE_PATTERN:
        return "a dotted key of the paper's reference values, e.g. fig4_deit_s_imagenet.test_acc"
    if "pattern" in schema:  # patterns are only used for names, which become path components
        return f"a name matching {schema['pattern']} (letters, digits, '_', '-'; no path separators)"
    kinds = schema.get("type")
    nullable = isinstance(kinds, list) and "null" in kinds
    if isinstance(kinds, list):   # e.g. [integer, "null"]: described by its one other type
        kinds = next((kind for kind in kinds if kind != "null"), None)
    text = _TYPE_WORDS.get(kinds, "a value")
    bounds = [f"{op} {schema[key]}" for key, op in _BOUNDS if key in schema]
    if bounds:
        text += " " + " and ".join(bounds)
    if nullable:
        text += " (or null)"
    if kinds == "array":
        least = schema.get("minItems", 0)
        if least:
            text = "a non-empty list" if least == 1 else f"a list of >= {least} items"
        if schema.get("uniqueItems"):
            text += " without duplicates"
        if "items" in schema:
            text += ", each " + describe(schema["items"])
    return text


def _message(error: jsonschema.ValidationError) -> str:
    where, kind, schema = list(error.absolute_path), error.validator, error.schema
    if kind == "additionalProperties" and isinstance(error.instance, dict):
        allowed = sorted(schema.get("properties", {}))
        extra = sorted(str(k) for k in error.instance if k not in allowed)
        return f"{_where(where + extra[:1])}: unknown key; allowed keys: {', '.join(allowed)}"
    if kind == "required":
        missing = [key for key in schema["required"] if key not in error.instance]
        return (f"{_where(where)}: required key {missing[0]!r} is missing; required keys: "
                f"{', '.join(schema['required'])}")
    if "propertyNames" in error.absolute_schema_path:
        return f"{_where(where)}: name {_short(error.instance)} is not allowed; expected {describe(schema)}"
    if kind == "minProperties":
        return f"{_where(where)}: an empty mapping is not allowed; expected at least one entry"
    return f"{_where(where)}: {_short(error.instance)} is not allowed; expected {describe(schema)}"


def fill_defaults(instance, schema: dict):
    """Insert schema defaults for missing keys, recursing into mappings and lists (in place)."""
    if isinstance(instance, dict) and schema.get("type") == "object":
        properties = schema.get("properties", {})
        for key, sub in properties.items():
            if key not in instance and "default" in sub:
                instance[key] = copy.deepcopy(sub["default"])
        extra = schema.get("additionalProperties")
        for key, value in instance.items():
            sub = properties.get(key, extra if isinstance(extra, dict) else None)
            if sub:
                fill_defaults(value, sub)
    elif isinstance(instance, list) and isinstance(schema.get("items"), dict):
        for item in instance:
            fill_defaults(item, schema["items"])
    return instance


def _fail(parts, value, expected: str):
    raise ConfigError(f"{_where(parts)}: {_short(value)} is not allowed; expected {expected}")


def _check_semantics(config: dict) -> None:
    for name, spec in config["datasets"].items():
        total = spec["val_fraction"] + spec["test_fraction"]
        if total >= 1:
            _fail(["datasets", name, "test_fraction"], spec["test_fraction"],
                  f"val_fraction + test_fraction < 1 to leave training data (sum is {total:g})")
    seen: dict[str, int] = {}
    for i, exp in enumerate(config["experiments"]):
        at = ["experiments", i]
        if exp["name"] in seen:
            _fail(at + ["name"], exp["name"],
                  f"a name unique among experiments (also used by experiments[{seen[exp['name']]}])")
        seen[exp["name"]] = i
        if exp["dataset"] not in config["datasets"]:
            _fail(at + ["dataset"], exp["dataset"], "one of the datasets: " + ", ".join(config["datasets"]))
        model, train = exp["model"], exp["train"]
        _check_schedules(exp, at)
        _check_post_hoc(exp, at)
        _check_as_loaded(exp, at)
        shallower = [d for d in exp["depth_study"] if d >= model["depth"]]
        if shallower:
            _fail(at + ["depth_study"], exp["depth_study"],
                  f"depths below model.depth ({model['depth']}), each a shallower standard model")
        _check_train(train, at + ["train"])
        if exp.get("pretrain"):
            _check_train(exp["pretrain"]["train"], at + ["pretrain", "train"])
            if model.get("pretrained"):
                _fail(at + ["pretrain"], exp["pretrain"], "no pretrain section where "
                      f"model.pretrained ({model['pretrained']}) gives the starting point")
            if exp["depth_study"]:
                _fail(at + ["depth_study"], exp["depth_study"], "[] where runs start from a "
                      "pretraining of model.depth (a shallower model cannot load it)")


def _check_train(train: dict, at: list) -> None:
    """A schedule's epochs: warm-up and milestones inside them."""
    if train["warmup_epochs"] >= train["epochs"]:
        _fail(at + ["warmup_epochs"], train["warmup_epochs"],
              f"an integer >= 0 and < epochs ({train['epochs']})")
    steps = train["milestones"]
    if any(a >= b for a, b in zip(steps, steps[1:])) or any(m >= train["epochs"] for m in steps):
        _fail(at + ["milestones"], steps,
              f"strictly increasing epochs, each >= 1 and < epochs ({train['epochs']})")


def _check_references(config: dict) -> None:
    """Settings that name experiments, checked after the experiments themselves."""
    names = [exp["name"] for exp in config["experiments"]]
    ablation = config["analysis"].get("residual_ablation") or {}
    for which, name in ablation.items():
        if name not in names:
            _fail(["analysis", "residual_ablation", which], name,
                  "the name of an experiment: one of " + ", ".join(names))


def _check_post_hoc(exp: dict, at: list) -> None:
    """A post-hoc method (the tuned lens) is fitted on the runs of another method of the same
    experiment, which must then be trained too."""
    from layerwise.train.methods import METHODS

    for i, name in enumerate(exp["methods"]):
        base = METHODS[name].post_hoc
        if base is not None and base not in exp["methods"]:
            _fail(at + ["methods", i], name, f"a method whose runs the experiment trains: "
                  f"{name} is fitted on its {base} runs, so methods must list {base} too")


def _check_as_loaded(exp: dict, at: list) -> None:
    """A checkpoint analysed as published needs a checkpoint."""
    from layerwise.train.methods import METHODS

    for i, name in enumerate(exp["methods"]):
        if METHODS[name].as_loaded and not exp["model"].get("pretrained"):
            _fail(at + ["methods", i], name, "a method the experiment's model can run: "
                  f"{name} analyses the checkpoint model.pretrained names, which is unset")


def _check_schedules(exp: dict, at: list) -> None:
    """Methods an experiment compares share the alternating schedule unless it says why not:
    a comparison must not hide a difference of schedule."""
    from layerwise.train.methods import METHODS

    alternate = {}
    for name in exp["methods"]:
        settings = METHODS[name].settings(exp)
        if settings is not None and "alternate" in settings:
            alternate[name] = settings["alternate"]
    if len(set(alternate.values())) > 1 and not exp["schedule_reason"]:
        first, *others = alternate
        differing = next(m for m in others if alternate[m] != alternate[first])
        _fail(at + [METHODS[differing].section, "alternate"], alternate[differing],
              f"{alternate[first]}, the schedule of {first}, which this experiment compares it "
              "with (or a schedule_reason saying why they differ)")


def _source_keys(config: dict, schema: dict) -> None:
    """The dataset keys only some sources take (their records say which): none a dataset's
    source does not take, every one it requires, and its defaults where a dataset leaves one
    out; then a text dataset's tokenizer."""
    properties = schema["properties"]["datasets"]["additionalProperties"]["properties"]
    takers: dict[str, list[str]] = {}
    for name, source in SOURCES.items():
        for key in source.keys:
            takers.setdefault(key, []).append(name)
    for name, spec in config["datasets"].items():
        at, source = ["datasets", name], spec["source"]
        record = SOURCES[source]
        for key in takers:
            if key in spec and key not in record.keys:
                _fail(at + [key], spec[key],
                      f"no {key} for source {source} (only for {', '.join(takers[key])})")
        for key, gives in record.required.items():
            if key not in spec:
                raise ConfigError(f"{_where(at)}: required key {key!r} is missing for source "
                                  f"{source}; {gives}")
        for key, default in record.defaults.items():
            if key not in spec:
                value = copy.deepcopy(default)
                spec[key] = (fill_defaults(value, properties[key]) if isinstance(value, dict)
                             else value)
        if source in TEXT_SOURCES:
            _check_tokenizer(at + ["text"], spec["text"], source)


# A trained byte-level BPE holds the 256 byte tokens and <|endoftext|> and <|pad|>.
_BPE_BASE_VOCAB = 258


def _check_tokenizer(at: list, text: dict, source: str) -> None:
    """A trained tokenizer of the right kind for the source: WordPiece for classification,
    byte-level BPE (with room for merges) for a language model."""
    tokenizer, kind = text["tokenizer"], SOURCES[source].kind
    wordpiece, bpe = TRAINED_TOKENIZERS["text"], TRAINED_TOKENIZERS["lm"]
    if kind == "lm" and tokenizer == wordpiece:
        _fail(at + ["tokenizer"], tokenizer, f"{bpe} or a transformers checkpoint name (e.g. "
              f"gpt2) for language-model source {source}; a text block of a language-model "
              "source must name its tokenizer")
    if kind == "text" and tokenizer == bpe:
        _fail(at + ["tokenizer"], tokenizer, f"{wordpiece} or a transformers checkpoint name for "
              f"text classification source {source} ({bpe} is for language-model sources: "
              f"{', '.join(LM_SOURCES)})")
    if tokenizer == bpe and text["vocab_size"] < _BPE_BASE_VOCAB:
        _fail(at + ["vocab_size"], text["vocab_size"], f"an integer >= {_BPE_BASE_VOCAB} for a "
              f"byte-level BPE (its 256 byte tokens and 2 special tokens, plus merges; "
              f"{_BPE_BASE_VOCAB}: the bytes themselves)")


def _check_decoding(config: dict) -> None:
    """A language model trained from scratch has positions for its blocks only: what decoding
    and generation feed it (prompt, generated tokens and a draft's look-ahead) must fit."""
    exits = config["exits"]
    needs = {
        ("decoding", "steps"): exits["decoding"]["prompt_length"] + exits["decoding"]["steps"],
        ("speculative", "steps"): (exits["speculative"]["prompt_length"]
                                   + exits["speculative"]["steps"]
                                   + max(exits["speculative"]["draft_lengths"])),
        ("generation", "new_tokens"): (exits["generation"]["prefix_length"]
                                       + exits["generation"]["new_tokens"]),
    }
    for exp in config["experiments"]:
        data = config["datasets"][exp["dataset"]]
        if SOURCES[data["source"]].kind != "lm" or exp["model"].get("pretrained"):
            continue
        positions = data["text"]["max_length"]
        for (section, key), need in needs.items():
            if need > positions:
                _fail(["exits", section, key], exits[section][key],
                      f"a value that keeps the tokens fed to experiment {exp['name']!r} "
                      f"within its {positions} positions (datasets.{exp['dataset']}.text."
                      f"max_length); {need} are needed")


def _yaml(value) -> str:
    """A scalar as a config file writes it: null, true, 2."""
    return yaml.safe_dump(value, default_flow_style=True).removesuffix("\n...\n").strip()


def _listed(names, last: str = "and") -> str:
    """'a', 'a and b', 'a, b and c' (or another word than `last`)."""
    names = list(names)
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + f" {last} " + names[-1]


def _check_models(config: dict) -> None:
    """Each experiment's model against its backbone's record: the kind of data it reads, the
    keys it takes (pretrained, the keys it declares) and the backbone's own rules."""
    for i, exp in enumerate(config["experiments"]):
        at, model = ["experiments", i, "model"], exp["model"]
        record, data = BACKBONES[model["arch"]], config["datasets"][exp["dataset"]]
        kind = SOURCES[data["source"]].kind
        if record.inputs != kind:
            fitting = _listed((b.name for b in BACKBONES.values() if b.inputs == kind), "or")
            words = "images" if kind == "image" else kind
            _fail(at + ["arch"], model["arch"], f"{fitting}, for {words} dataset {exp['dataset']!r}")
        if model["pretrained"] and not record.pretrained:
            loaders = _listed(b.name for b in BACKBONES.values() if b.pretrained)
            _fail(at + ["pretrained"], model["pretrained"],
                  f"empty: only arch {loaders} load a checkpoint")
        if not model["pretrained"] and not record.from_scratch:
            _fail(at + ["pretrained"], model["pretrained"],
                  f"a checkpoint to analyse (a transformers name or a local folder): "
                  f"{model['arch']} is built only from one")
        if exp["train"].get("group_by_length") and record.inputs != "text":
            _fail(["experiments", i, "train", "group_by_length"], True,
                  f"false: only a text classifier's batches are grouped by length, not "
                  f"{model['arch']}'s")
        # A key some other backbone declares stays at its default, which fill_defaults gave
        # every backbone (unset where there is none): a value this backbone ignores is an error.
        for key, fragment in backbone_keys().items():
            default = fragment.get("default")
            if key not in record.keys and model.get(key) != default:
                takers = [b.name for b in BACKBONES.values() if key in b.keys]
                keep = _yaml(default) if "default" in fragment else "unset"
                verb = "takes" if len(takers) == 1 else "take"
                _fail(at + [key], model[key], f"{keep}: only {_listed(takers)} {verb} {key}")
        for key, value, expected in record.rules(model, data, exp["dataset"], image_side(data)):
            _fail(at + [key], value, expected)


def image_side(dataset: dict) -> int | None:
    """Side of a dataset's square images (None for text): its `image_size` where its source
    takes one, else the source's own."""
    if "image_size" in SOURCES[dataset["source"]].keys:
        return dataset.get("image_size", DEFAULT_IMAGE_SIDE)
    return SOURCES[dataset["source"]].image_side


def _check_paper_references(config: dict) -> None:
    """Each experiment's paper reference names a value of the paper's."""
    for i, exp in enumerate(config["experiments"]):
        at = ["experiments", i]
        key = exp.get("paper_reference")
        if key:
            from layerwise.reference import paper_values

            node = paper_values()
            for part in key.split("."):
                if not isinstance(node, dict) or part not in node:
                    known = ", ".join(k for k in paper_values() if k != "source")
                    _fail(at + ["paper_reference"], key, "a dotted key of the paper's reference "
                          f"values (src/layerwise/paper_reference_values.yaml): {known}")
                node = node[part]


def validate_config(config: dict, schema: dict | None = None) -> dict:
    """Validate a configuration and return a deep copy with every default filled in."""
    schema = schema or load_schema()
    error = best_match(Validator(schema).iter_errors(config))
    if error is not None:
        raise ConfigError(_message(error).replace("\n", " "))
    filled = fill_defaults(copy.deepcopy(config), schema)
    _source_keys(filled, schema)
    _check_semantics(filled)
    _check_paper_references(filled)
    _check_models(filled)
    _check_decoding(filled)
    _check_references(filled)
    return filled


class _UniqueKeyLoader(yaml.SafeLoader):
    """A SafeLoader that rejects a key repeated within one mapping instead of keeping the last."""


def _construct_unique_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode, deep: bool = False):
    seen = set()
    for key_node, _ in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":  # '<<' merges may be overridden
            continue
        key = loader.construct_object(key_node, deep=True)
        try:
            duplicate = key in seen
            seen.add(key)
        except TypeError:  # an unhashable key: construct_mapping reports it
            continue
        if duplicate:
            raise yaml.constructor.ConstructorError(
                "while constructing a mapping", node.start_mark,
                f"duplicate key {key!r} (a key may appear only once per mapping)", key_node.start_mark)
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_unique_mapping)


def load_config_file(path: str | Path) -> dict:
    """Read one YAML configuration file; its top level must be a mapping."""
    try:
        with open(path, encoding="utf-8") as handle:
            data = yaml.load(handle, Loader=_UniqueKeyLoader)  # noqa: S506 (a SafeLoader subclass)
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise ConfigError(f"cannot read config file {path}: {reason}".replace("\n", " ")) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}, line {mark.line + 1}, column {mark.column + 1}" if mark else str(path)
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"config file {where}: invalid YAML: {problem}".replace("\n", " ")) from None
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path}: top level is {type(data).__name__}; expected a mapping")
    return data


def merge_configs(base: dict, override: dict) -> dict:
    """Merge like Snakemake's --configfile: mappings are updated recursively, anything else replaced."""
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge_configs(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def run_ids(config: dict) -> list[tuple[str, str, int]]:
    """(experiment, run name, seed) of every training run of a validated configuration."""
    return [(exp["name"], name, seed) for exp in config["experiments"]
            for name in run_names(exp) for seed in exp["seeds"]]


def experiment_by_name(config: dict, name: str) -> dict:
    """The experiment called ``name``; a ConfigError listing the known names if there is none."""
    for exp in config["experiments"]:
        if exp["name"] == name:
            return exp
    known = ", ".join(exp["name"] for exp in config["experiments"])
    raise ConfigError(f"no experiment named {name!r}; known experiments: {known}")


def load_configs(paths) -> dict:
    """The validated merge of YAML files, each on top of the ones before (as Snakemake merges
    config/config.yaml and each --configfile)."""
    config: dict = {}
    for path in paths:
        config = merge_configs(config, load_config_file(path))
    return validate_config(config)


def main(argv: list[str] | None = None) -> int:
    """Validate the merge of the given YAML files; print 'config OK' or a one-line error (or,
    given --schema, print the schema)."""
    paths = sys.argv[1:] if argv is None else list(argv)
    if not paths:
        print("usage: python -m layerwise.study.config CONFIG.yaml [MORE.yaml ...] | --schema",
              file=sys.stderr)
        return 2
    if paths == ["--schema"]:  # schema.yaml with the backbones' own keys: every key described
        print(yaml.safe_dump(load_schema(), sort_keys=False, width=100), end="")
        return 0
    try:
        load_configs(paths)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print("config OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
