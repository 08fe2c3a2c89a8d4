"""Device specs resolved against the real PortAudio device list."""

from __future__ import annotations

import pytest
import sounddevice as sd
from seamless_daemon.audio.devices import AudioDeviceError, Backoff, resolve_device

pytestmark = pytest.mark.audio


def test_exact_name_wins_over_substring(virtual_audio: object) -> None:
    dev = resolve_device("virt_mic", "input", "audio.input_device")  # also a substring of virt_mic_feed
    assert dev.name == "virt_mic"
    assert dev.index == sd.query_devices("virt_mic")["index"]
    assert dev.channels > 0 and dev.default_samplerate > 0


def test_unique_substring_case_insensitive(virtual_audio: object) -> None:
    assert resolve_device("SPEAKER_MON", "input", "k").name == "virt_speaker_monitor"


def test_index_and_digit_string(virtual_audio: object) -> None:
    index = sd.query_devices("virt_speaker")["index"]
    assert resolve_device(index, "output", "k").name == "virt_speaker"
    assert resolve_device(str(index), "output", "k").name == "virt_speaker"


def test_default(virtual_audio: object) -> None:
    for spec in ("default", None, ""):
        dev = resolve_device(spec, "output", "audio.output_device")
        assert dev.channels > 0


def test_unknown_name_error_is_one_line_naming_key(virtual_audio: object) -> None:
    with pytest.raises(AudioDeviceError) as err:
        resolve_device("usb mic", "input", "audio.input_device")
    msg = str(err.value)
    assert msg.startswith('audio.input_device: no input device named "usb mic"; available: ')
    assert "virt_mic" in msg and "\n" not in msg


def test_ambiguous_name(virtual_audio: object) -> None:
    with pytest.raises(AudioDeviceError) as err:
        resolve_device("virt_spea", "output", "audio.output_device")
    msg = str(err.value)
    assert msg.startswith('audio.output_device: output device name "virt_spea" is ambiguous: matches ')
    assert "virt_speaker (" in msg and "virt_speaker_monitor (" in msg


def test_bad_index_and_type(virtual_audio: object) -> None:
    with pytest.raises(AudioDeviceError, match=r"^audio\.input_device: no input device with index 999; available"):
        resolve_device(999, "input", "audio.input_device")
    with pytest.raises(AudioDeviceError, match=r"^audio\.input_device: expected a device name"):
        resolve_device(1.5, "input", "audio.input_device")  # type: ignore[arg-type]
    with pytest.raises(AudioDeviceError, match="expected a device name"):
        resolve_device(True, "input", "audio.input_device")


def test_device_without_channels_in_that_direction() -> None:
    # No real device here lacks input channels (the ALSA pulse plugin offers both), so use a listing.
    devices = [
        {"name": "HDMI out", "max_input_channels": 0, "max_output_channels": 2, "default_samplerate": 48000.0},
        {"name": "USB mic", "max_input_channels": 1, "max_output_channels": 0, "default_samplerate": 44100.0},
    ]
    expected = r'^a\.b: device 0 "HDMI out" has no input channels; available: USB mic$'
    with pytest.raises(AudioDeviceError, match=expected):
        resolve_device(0, "input", "a.b", devices)
    with pytest.raises(AudioDeviceError, match=r'^a\.b: no input device named "hdmi"; available: USB mic$'):
        resolve_device("hdmi", "input", "a.b", devices)
    assert resolve_device("usb", "input", "a.b", devices).default_samplerate == 44100.0


def test_backoff_grows_to_max() -> None:
    b = Backoff(0.5, 3.0)
    assert [b.delay(i) for i in range(5)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    with pytest.raises(ValueError, match="initial_s"):
        Backoff(5.0, 1.0)
