"""Config loading: the shipped file, defaults, and one-line key-path errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from seamless_daemon.config import (
    DEFAULT_STATE_DIR,
    AudioConfig,
    Config,
    ConfigError,
    ControlConfig,
    load_config,
    parse_config,
    reload_config,
)
from seamless_daemon.provider_spec import (
    CPU_PROVIDER,
    CUDA_PROVIDER,
    TENSORRT_PROVIDER,
    CudaSettings,
    DimRange,
    ProviderSpec,
    TensorrtSettings,
)

SHIPPED = Path(__file__).resolve().parents[1] / "config" / "seamless-daemon.yaml"
SHIPPED_BUNDLE = Path("/var/lib/seamless-daemon/bundle")


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_shipped_file_parses_and_equals_defaults() -> None:
    assert load_config(SHIPPED) == Config(bundle=SHIPPED_BUNDLE)


def test_shipped_file_documents_every_key() -> None:
    data = yaml.safe_load(SHIPPED.read_text(encoding="utf-8"))
    defaults = Config(bundle=SHIPPED_BUNDLE)
    for section, value in vars(defaults).items():
        if section in ("bundle", "mode"):
            assert section in data
            continue
        assert set(data[section]) == set(vars(value)), section
    for name, value in vars(defaults.streaming).items():
        if not isinstance(value, (str, float)):
            assert set(data["streaming"][name]) == set(vars(value)), f"streaming.{name}"


def test_streaming_knobs_are_converted(tmp_path: Path) -> None:
    text = ("bundle: /b\nstreaming:\n  policy: overlap\n  min_translate_s: 0.2\n"
            "  overlap: {chunk_s: 3, overlap_s: 1, min_output_gap_s: 0, history_s: 6}\n"
            "  segmenter: {threshold: 0.6, release_margin: 0, max_utterance_s: 8, cut_search_fraction: 1}\n"
            "  agreement: {step_s: 0.25, max_lag_s: 0, word_boundary: false}\n"
            "  budget: {tokens_per_second: 6, extra_tokens: 4}\n")
    streaming = load_config(write(tmp_path, text)).streaming
    assert streaming.policy == "overlap" and streaming.min_translate_s == 0.2
    assert (streaming.overlap.chunk_s, streaming.overlap.overlap_s, streaming.overlap.history_s) == (3.0, 1.0, 6.0)
    assert streaming.segmenter.threshold == 0.6 and streaming.segmenter.release_margin == 0.0
    assert streaming.segmenter.min_silence_s == 0.6  # untouched keys keep their defaults
    assert streaming.agreement.word_boundary is False and streaming.agreement.step_s == 0.25
    assert streaming.budget.extra_tokens == 4 and streaming.budget.tokens_per_second == 6.0


def test_bundle_only_config_loads_with_defaults(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, "bundle: /models/b\n"))
    assert config.bundle == Path("/models/b")
    assert config.mode == "complete"
    assert config.translation.target_lang == "fra"
    assert config.control == ControlConfig()
    assert config.control.mode == 0o660
    assert config.control.max_message_bytes == 16 * 1024 * 1024
    assert config.audio == AudioConfig()


def test_relative_bundle_is_taken_from_the_config_folder(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, "bundle: models/b\n"))
    assert config.bundle == (tmp_path / "models" / "b").resolve()


def test_values_are_converted(tmp_path: Path) -> None:
    text = (
        "bundle: /b\nmode: streaming\n"
        "translation: {speaker: 3, max_new_tokens: 64, target_lang: cmn_Hant}\n"
        "runtime: {providers: [CUDAExecutionProvider, CPUExecutionProvider], intra_op_threads: 2}\n"
        "audio: {input_device: 2, output_device: USB, input_sample_rate: 48000, echo_guard: false}\n"
        "control: {mode: '0600', group: audio, socket: /tmp/x.sock}\n"
        "streaming: {policy: vad}\n"
    )
    config = load_config(write(tmp_path, text))
    assert config.mode == "streaming"
    assert config.translation.speaker == 3 and config.translation.max_new_tokens == 64
    assert [spec.name for spec in config.runtime.providers] == ["CUDAExecutionProvider", "CPUExecutionProvider"]
    assert config.audio.input_device == 2 and config.audio.output_device == "USB"
    assert config.audio.echo_guard is False
    assert config.control.mode == 0o600 and config.control.group == "audio"
    assert config.streaming.policy == "vad"


def test_provider_names_and_settings_are_converted(tmp_path: Path) -> None:
    text = ("bundle: /b\nservice: {state_dir: /srv/seamless}\nruntime:\n  require_provider: true\n  providers:\n"
            "    - {name: tensorrt, device_id: 1, fp16: true, max_workspace_mib: 2048, profile: {T: [1, 100, 3000]}}\n"
            "    - {name: cuda, device_id: 1, gpu_mem_limit_mib: 4096, cudnn_conv_algo_search: heuristic}\n"
            "    - CPUExecutionProvider\n")
    runtime = load_config(write(tmp_path, text)).runtime
    assert runtime.require_provider is True
    assert [spec.name for spec in runtime.providers] == [TENSORRT_PROVIDER, CUDA_PROVIDER, CPU_PROVIDER]
    trt, cuda, cpu = runtime.providers
    assert trt.tensorrt == TensorrtSettings(device_id=1, fp16=True, max_workspace_mib=2048,
                                            engine_cache_dir=Path("/srv/seamless/tensorrt"),
                                            profile={"T": DimRange(1, 100, 3000)})
    assert cuda.cuda == CudaSettings(device_id=1, gpu_mem_limit_mib=4096, cudnn_conv_algo_search="heuristic")
    assert cpu == ProviderSpec(CPU_PROVIDER)


def test_plain_and_readable_provider_names_are_the_same(tmp_path: Path) -> None:
    plain_names = "[CUDAExecutionProvider, CPUExecutionProvider]"
    plain = load_config(write(tmp_path, f"bundle: /b\nruntime: {{providers: {plain_names}}}\n"))
    readable = load_config(write(tmp_path, "bundle: /b\nruntime: {providers: [cuda, cpu]}\n"))
    assert plain.runtime == readable.runtime
    assert plain.runtime.providers[0].cuda == CudaSettings()


def test_engine_cache_dir_defaults_under_the_state_dir(tmp_path: Path) -> None:
    default = load_config(write(tmp_path, "bundle: /b\nruntime: {providers: [tensorrt]}\n"))
    assert default.runtime.providers[0].tensorrt.engine_cache_dir == DEFAULT_STATE_DIR / "tensorrt"
    own = load_config(write(tmp_path, "bundle: /b\nruntime: {providers: [{name: tensorrt, engine_cache_dir: /c}]}\n"))
    assert own.runtime.providers[0].tensorrt.engine_cache_dir == Path("/c")


def test_config_is_frozen() -> None:
    config = parse_config({"bundle": "/b"}, "x")
    with pytest.raises(AttributeError):
        config.mode = "streaming"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("snippet", "expected"),
    [
        ("translation: {speaker: x}", 'translation.speaker: must be an integer >= 0, got "x"'),
        ("translation: {speaker: -1}", "translation.speaker: must be an integer >= 0, got -1"),
        ("translation: {speaker: true}", "translation.speaker: must be an integer >= 0, got true"),
        ("translation: {colour: red}", "translation.colour: unknown key"),
        ("colour: red", "colour: unknown key"),
        ("mode: fast", "mode: must be one of complete, streaming"),
        ("recording: {while_playing: drop}", "recording.while_playing: must be one of queue, refuse"),
        ("logging: {level: INFO}", "logging.level: must be one of debug, info, warning, error"),
        ("streaming: {policy: greedy}", "streaming.policy: must be one of overlap, vad, agreement"),
        ("runtime: {inter_op_threads: 0}", "runtime.inter_op_threads: must be an integer >= 1, got 0"),
        ("runtime: {providers: []}", "runtime.providers: must be a non-empty list"),
        ("runtime: {providers: [1]}", "runtime.providers[0]: must be a non-empty one-line string"),
        ("runtime: {providers: [gpu]}", 'runtime.providers[0]: unknown provider "gpu"; use cpu, cuda, tensorrt or'),
        ("runtime: {providers: [cpu, {name: cuda, colour: red}]}",
         "runtime.providers[1].colour: unknown key (allowed: name, device_id, gpu_mem_limit_mib, cudnn_conv_algo"),
        ("runtime: {providers: [{device_id: 0}]}", "runtime.providers[0].name: required key is missing"),
        ("runtime: {providers: [{name: cuda, device_id: -1}]}",
         "runtime.providers[0].device_id: must be an integer >= 0, got -1"),
        ("runtime: {providers: [{name: cuda, gpu_mem_limit_mib: 0}]}",
         "runtime.providers[0].gpu_mem_limit_mib: must be an integer >= 1, got 0 (or null for no limit)"),
        ("runtime: {providers: [{name: cuda, cudnn_conv_algo_search: fast}]}",
         "runtime.providers[0].cudnn_conv_algo_search: must be one of exhaustive, heuristic, default"),
        ("runtime: {providers: [{name: tensorrt, fp16: 1}]}",
         "runtime.providers[0].fp16: must be true or false, got 1"),
        ("runtime: {providers: [{name: tensorrt, profile: {T: [1, 500, 100]}}]}",
         "runtime.providers[0].profile.T: must be [min, opt, max] with 0 <= min <= opt <= max and max >= 1, got"),
        ("runtime: {providers: [{name: tensorrt, profile: {T: [0, 0, 0]}}]}",
         "runtime.providers[0].profile.T: must be [min, opt, max] with 0 <= min"),
        ("runtime: {providers: [{name: tensorrt, profile: [1]}]}", "runtime.providers[0].profile: must be a mapping"),
        ("runtime: {providers: [{name: tensorrt, engine_cache_dir: cache}]}",
         'runtime.providers[0].engine_cache_dir: must be an absolute path, got "cache"'),
        ("runtime: {providers: [{name: cpu, device_id: 0}]}",
         "runtime.providers[0].device_id: unknown key (allowed: name)"),
        ("runtime: {providers: [cuda, CUDAExecutionProvider]}",
         "runtime.providers[1]: CUDAExecutionProvider is listed twice"),
        ("runtime: {require_provider: 'yes'}", 'runtime.require_provider: must be true or false, got "yes"'),
        ("service: {state_dir: var/lib}", 'service.state_dir: must be an absolute path, got "var/lib"'),
        ("audio: {queue_seconds: -5}", "audio.queue_seconds: must be a number > 0, got -5"),
        ("audio: {block_ms: 0}", "audio.block_ms: must be an integer >= 1, got 0"),
        ("audio: {input_device: -1}", "audio.input_device: must be"),
        ("audio: {echo_guard: 'yes'}", 'audio.echo_guard: must be true or false, got "yes"'),
        ("audio: {input_sample_rate: 0}", "audio.input_sample_rate: must be an integer >= 1, got 0 (or null"),
        ("audio: {reopen_backoff_initial_s: 20}", "audio.reopen_backoff_max_s: must be >= audio.reopen_backoff"),
        ("control: {mode: '0999'}", 'control.mode: must be a quoted octal permission string like "0660", got "0999"'),
        ("control: {mode: 660}", "control.mode: must be a quoted octal permission string"),
        ("control: {socket: relative.sock}", "control.socket: must be an absolute path"),
        ("control: {socket: /" + "x" * 120 + "}", "control.socket: is 121 bytes, longer than the 107-byte"),
        ("control: {max_clients: 0}", "control.max_clients: must be an integer between 1 and 1024, got 0"),
        ("control: {max_message_bytes: 10}", "control.max_message_bytes: must be an integer between"),
        ("service: {stop_timeout_s: 0}", "service.stop_timeout_s: must be a number > 0, got 0"),
        ("translation: {target_lang: French}", "translation.target_lang: must be a language code"),
        ("translation: {max_new_tokens: 0}", "translation.max_new_tokens: must be an integer >= 1, got 0"),
        ("audio: [1, 2]", "audio: must be a mapping of keys, got [1, 2]"),
        ("streaming: {min_translate_s: 0}", "streaming.min_translate_s: must be a number > 0, got 0"),
        ("streaming: {overlap: {chunk_s: -1}}", "streaming.overlap.chunk_s: must be a number > 0, got -1"),
        ("streaming: {overlap: {overlap_s: 2.0}}", "streaming.overlap.overlap_s: must be < streaming.overlap.chunk_s"),
        ("streaming: {overlap: {min_output_gap_s: -0.1}}", "streaming.overlap.min_output_gap_s: must be a number >= 0"),
        ("streaming: {overlap: {history_s: 1.0}}", "streaming.overlap.history_s: must be >= streaming.overlap.chunk_s"),
        ("streaming: {overlap: {size: 1}}", "streaming.overlap.size: unknown key (allowed: chunk_s, overlap_s"),
        ("streaming: {overlap: 3}", "streaming.overlap: must be a mapping of keys, got 3"),
        ("streaming: {segmenter: {threshold: 1.5}}", "streaming.segmenter.threshold: must be a number in (0, 1)"),
        ("streaming: {segmenter: {release_margin: 0.6}}",
         "streaming.segmenter.release_margin: must be < streaming.segmenter.threshold (0.5)"),
        ("streaming: {segmenter: {min_silence_s: 0}}", "streaming.segmenter.min_silence_s: must be a number > 0"),
        ("streaming: {segmenter: {cut_search_fraction: 1.5}}",
         "streaming.segmenter.cut_search_fraction: must be in (0, 1]"),
        ("streaming: {segmenter: {pre_roll_s: -1}}", "streaming.segmenter.pre_roll_s: must be a number >= 0"),
        ("streaming: {segmenter: {max_utterance_s: 0.4}}",
         "streaming.segmenter.max_utterance_s: must be more than twice"),
        ("streaming: {agreement: {step_s: 0}}", "streaming.agreement.step_s: must be a number > 0, got 0"),
        ("streaming: {agreement: {max_lag_s: -1}}", "streaming.agreement.max_lag_s: must be a number >= 0"),
        ("streaming: {agreement: {word_boundary: 1}}", "streaming.agreement.word_boundary: must be true or false"),
        ("streaming: {budget: {tokens_per_second: 0}}", "streaming.budget.tokens_per_second: must be a number > 0"),
        ("streaming: {budget: {extra_tokens: 0}}", "streaming.budget.extra_tokens: must be an integer >= 1, got 0"),
    ],
)
def test_errors_name_the_key_path(tmp_path: Path, snippet: str, expected: str) -> None:
    path = write(tmp_path, f"bundle: /b\n{snippet}\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert message.startswith(f"{path}: ")
    assert expected in message
    assert "\n" not in message


def test_missing_bundle_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"bundle: required key is missing"):
        load_config(write(tmp_path, "mode: complete\n"))
    with pytest.raises(ConfigError, match=r"bundle: required key is missing \(the file is empty\)"):
        load_config(write(tmp_path, ""))


def test_top_level_must_be_a_mapping(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="the top level must be a mapping"):
        load_config(write(tmp_path, "- bundle\n"))


def test_yaml_syntax_error_gives_line_and_column(tmp_path: Path) -> None:
    path = write(tmp_path, "bundle: /b\ntranslation: {speaker: 1\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert message.startswith(f"{path}: YAML syntax error at line ")
    assert "\n" not in message


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "absent.yaml"
    with pytest.raises(ConfigError, match=f"^{path}: config file not found$"):
        load_config(path)


def test_parse_config_uses_origin_and_key() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config({"bundle": "/b", "translation": {"speaker": "x"}}, "override")
    assert info.value.key == "translation.speaker"
    assert str(info.value) == 'override: translation.speaker: must be an integer >= 0, got "x"'


def test_non_string_key_is_unknown() -> None:
    with pytest.raises(ConfigError, match="translation.1: unknown key"):
        parse_config({"bundle": "/b", "translation": {1: 2}}, "")


def test_reload_returns_new_config_or_error(tmp_path: Path) -> None:
    path = write(tmp_path, "bundle: /b\n")
    old = load_config(path)
    path.write_text("bundle: /b\ntranslation: {target_lang: deu}\n", encoding="utf-8")
    result = reload_config(path)
    assert result.ok and result.config is not None
    assert result.config.translation.target_lang == "deu"
    path.write_text("bundle: /b\ntranslation: {target_lang: 5}\n", encoding="utf-8")
    result = reload_config(path)
    assert not result.ok and result.config is None
    assert result.error is not None and result.error.key == "translation.target_lang"
    assert old.translation.target_lang == "fra"


def test_default_message_limit_fits_a_30_s_float_stereo_wav_as_base64() -> None:
    wav_header_bytes = 44
    wav_bytes = wav_header_bytes + 30 * 48000 * 2 * 4
    base64_bytes = 4 * -(-wav_bytes // 3)
    request_overhead = 200
    assert base64_bytes + request_overhead <= ControlConfig().max_message_bytes


def test_streaming_defaults_are_the_policy_defaults() -> None:
    from seamless_daemon.app.stream_mode import stream_settings
    from seamless_daemon.stream.settings import StreamSettings

    assert stream_settings(Config(bundle=SHIPPED_BUNDLE).streaming, "agreement") == StreamSettings()
    assert load_config(SHIPPED).streaming.policy == StreamSettings().policy
