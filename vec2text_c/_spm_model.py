"""What a SentencePiece `spiece.model` holds, read from its protobuf bytes without protobuf.

Only the fields a T5 tokenizer needs: every piece with its score and type, the trainer's model
type and unknown id, and the normaliser's precompiled character map. Field numbers are those of
sentencepiece_model.proto (ModelProto: pieces 1, trainer_spec 2, normalizer_spec 3;
SentencePiece: piece 1, score 2, type 3; TrainerSpec: model_type 3, byte_fallback 35, unk_id 40;
NormalizerSpec: precompiled_charsmap 2).
"""
from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Iterator

__all__ = ["SpmModel", "read_spm_model", "NORMAL", "UNKNOWN", "CONTROL", "USER_DEFINED", "UNUSED", "BYTE"]

NORMAL, UNKNOWN, CONTROL, USER_DEFINED, UNUSED, BYTE = 1, 2, 3, 4, 5, 6
UNIGRAM, BPE = 1, 2


@dataclass
class SpmModel:
    pieces: list[tuple[str, float, int]] = field(default_factory=list)  # (piece, score, type)
    model_type: int = UNIGRAM
    unk_id: int = 0
    byte_fallback: bool = False
    precompiled_charsmap: bytes = b""


def _varint(buf: bytes, i: int, where: str) -> tuple[int, int]:
    value = shift = 0
    while True:
        if i >= len(buf) or shift > 63:
            raise ValueError(f"{where}: truncated or malformed SentencePiece model (bad varint)")
        byte = buf[i]
        i += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return value, i


def _fields(buf: bytes, where: str) -> Iterator[tuple[int, int, object]]:
    """(field number, wire type, value) of one serialised message."""
    i = 0
    while i < len(buf):
        key, i = _varint(buf, i, where)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, i = _varint(buf, i, where)
        elif wire == 1:
            value, i = buf[i:i + 8], i + 8
        elif wire == 2:
            n, i = _varint(buf, i, where)
            value, i = buf[i:i + n], i + n
        elif wire == 5:
            value, i = buf[i:i + 4], i + 4
        else:
            raise ValueError(f"{where}: not a SentencePiece model (protobuf wire type {wire})")
        if i > len(buf):
            raise ValueError(f"{where}: truncated SentencePiece model")
        yield number, wire, value


def read_spm_model(data: bytes, where: str = "spiece.model") -> SpmModel:
    m = SpmModel()
    for number, wire, value in _fields(data, where):
        if number == 1 and wire == 2:
            piece, score, kind = "", 0.0, NORMAL
            for n2, w2, v2 in _fields(value, where):
                if n2 == 1 and w2 == 2:
                    piece = bytes(v2).decode("utf-8", errors="strict")
                elif n2 == 2 and w2 == 5:
                    score = struct.unpack("<f", v2)[0]
                elif n2 == 3 and w2 == 0:
                    kind = int(v2)
            m.pieces.append((piece, score, kind))
        elif number == 2 and wire == 2:
            for n2, w2, v2 in _fields(value, where):
                if n2 == 3 and w2 == 0:
                    m.model_type = int(v2)
                elif n2 == 35 and w2 == 0:
                    m.byte_fallback = bool(v2)
                elif n2 == 40 and w2 == 0:
                    m.unk_id = int(v2)
        elif number == 3 and wire == 2:
            for n2, w2, v2 in _fields(value, where):
                if n2 == 2 and w2 == 2:
                    m.precompiled_charsmap = bytes(v2)
    if not m.pieces:
        raise ValueError(f"{where}: no pieces; expected a SentencePiece model")
    return m
