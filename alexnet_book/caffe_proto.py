"""The part of Caffe's ``caffe.proto`` that holds a trained network's weights, built without Caffe or protoc.

A ``.caffemodel`` file is one serialised ``caffe.NetParameter`` message.  Only the fields needed to read
weights (and the few layer settings that decide what the weights compute) are declared here; protobuf skips
every other field of the file as unknown, so the subset reads files written by any Caffe version.

Field numbers, checked against BVLC Caffe's ``src/caffe/proto/caffe.proto`` (proto2, package ``caffe``):

  NetParameter           name=1, layers=2 (V1LayerParameter, the 2014 format), layer=100 (LayerParameter)
  LayerParameter         name=1, type=2 (string), blobs=7, convolution_param=106, inner_product_param=117,
                         lrn_param=118, pooling_param=121
  V1LayerParameter       name=4, type=5 (enum LayerType: CONVOLUTION=4, INNER_PRODUCT=14, LRN=15, ...),
                         blobs=6, convolution_param=10, inner_product_param=17, lrn_param=18, pooling_param=19
  BlobProto              num=1, channels=2, height=3, width=4 (the 4-D shape of V1 files), data=5 (packed
                         float), double_data=8 (packed double), shape=7 (BlobShape)
  BlobShape              dim=1 (packed int64)
  ConvolutionParameter   num_output=1, pad=3, kernel_size=4, group=5, stride=6, pad_h=9, pad_w=10,
                         kernel_h=11, kernel_w=12, stride_h=13, stride_w=14
  InnerProductParameter  num_output=1, transpose=6
  LRNParameter           local_size=1, alpha=2, beta=3, norm_region=4, k=5
  PoolingParameter       pool=1, kernel_size=2, stride=3, pad=4

The descriptor is built in a private pool, so it never clashes with a real ``caffe_pb2`` a user has imported.
"""
from __future__ import annotations

from functools import lru_cache

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

PACKAGE = "caffe"

# V1LayerParameter.LayerType, the whole enum as caffe.proto has it (the old format names layers by number).
V1_LAYER_TYPES = {
    "NONE": 0, "ABSVAL": 35, "ACCURACY": 1, "ARGMAX": 30, "BNLL": 2, "CONCAT": 3, "CONTRASTIVE_LOSS": 37,
    "CONVOLUTION": 4, "DATA": 5, "DECONVOLUTION": 39, "DROPOUT": 6, "DUMMY_DATA": 32, "EUCLIDEAN_LOSS": 7,
    "ELTWISE": 25, "EXP": 38, "FLATTEN": 8, "HDF5_DATA": 9, "HDF5_OUTPUT": 10, "HINGE_LOSS": 28, "IM2COL": 11,
    "IMAGE_DATA": 12, "INFOGAIN_LOSS": 13, "INNER_PRODUCT": 14, "LRN": 15, "MEMORY_DATA": 29,
    "MULTINOMIAL_LOGISTIC_LOSS": 16, "MVN": 34, "POOLING": 17, "POWER": 26, "RELU": 18, "SIGMOID": 19,
    "SIGMOID_CROSS_ENTROPY_LOSS": 27, "SILENCE": 36, "SOFTMAX": 20, "SOFTMAX_LOSS": 21, "SPLIT": 22,
    "SLICE": 33, "TANH": 23, "WINDOW_DATA": 24, "THRESHOLD": 31,
}
# The new format's type strings for the V1 numbers that matter here (Caffe's UpgradeV1LayerType).
V1_TYPE_NAMES = {4: "Convolution", 14: "InnerProduct", 15: "LRN", 17: "Pooling", 18: "ReLU", 6: "Dropout",
                 5: "Data", 20: "Softmax", 21: "SoftmaxWithLoss", 1: "Accuracy", 3: "Concat", 22: "Split"}

F = descriptor_pb2.FieldDescriptorProto
_OPTIONAL, _REPEATED = F.LABEL_OPTIONAL, F.LABEL_REPEATED
_SCALARS = {"string": F.TYPE_STRING, "float": F.TYPE_FLOAT, "double": F.TYPE_DOUBLE, "int64": F.TYPE_INT64,
            "uint32": F.TYPE_UINT32, "bool": F.TYPE_BOOL}


def _message(file: descriptor_pb2.FileDescriptorProto, name: str, fields: list[tuple]) -> descriptor_pb2.DescriptorProto:
    """Add ``message name { fields }``; a field is (name, number, type, repeated, packed/default)."""
    message = file.message_type.add(name=name)
    for field_name, number, kind, repeated, extra in fields:
        field = message.field.add(name=field_name, number=number, label=_REPEATED if repeated else _OPTIONAL)
        if kind in _SCALARS:
            field.type = _SCALARS[kind]
        elif kind.startswith("enum:"):
            field.type, field.type_name = F.TYPE_ENUM, f".{PACKAGE}.{kind[5:]}"
        else:
            field.type, field.type_name = F.TYPE_MESSAGE, f".{PACKAGE}.{kind}"
        if extra == "packed":
            field.options.packed = True
        elif extra is not None:
            field.default_value = extra
    return message


def _enum(parent, name: str, values: dict[str, int]) -> None:
    enum = parent.enum_type.add(name=name)
    for value_name, number in values.items():
        enum.value.add(name=value_name, number=number)


def file_descriptor() -> descriptor_pb2.FileDescriptorProto:
    """The caffe.proto subset as a FileDescriptorProto (field numbers in the module docstring)."""
    file = descriptor_pb2.FileDescriptorProto(name="alexnet_book_caffe_subset.proto", package=PACKAGE,
                                              syntax="proto2")
    _message(file, "BlobShape", [("dim", 1, "int64", True, "packed")])
    _message(file, "BlobProto", [
        ("num", 1, "int64", False, "0"), ("channels", 2, "int64", False, "0"),
        ("height", 3, "int64", False, "0"), ("width", 4, "int64", False, "0"),
        ("data", 5, "float", True, "packed"), ("shape", 7, "BlobShape", False, None),
        ("double_data", 8, "double", True, "packed"),
    ])
    _message(file, "ConvolutionParameter", [
        ("num_output", 1, "uint32", False, None), ("pad", 3, "uint32", True, None),
        ("kernel_size", 4, "uint32", True, None), ("group", 5, "uint32", False, "1"),
        ("stride", 6, "uint32", True, None), ("pad_h", 9, "uint32", False, "0"), ("pad_w", 10, "uint32", False, "0"),
        ("kernel_h", 11, "uint32", False, None), ("kernel_w", 12, "uint32", False, None),
        ("stride_h", 13, "uint32", False, None), ("stride_w", 14, "uint32", False, None),
    ])
    _message(file, "InnerProductParameter", [
        ("num_output", 1, "uint32", False, None), ("transpose", 6, "bool", False, "false"),
    ])
    lrn = _message(file, "LRNParameter", [
        ("local_size", 1, "uint32", False, "5"), ("alpha", 2, "float", False, "1"),
        ("beta", 3, "float", False, "0.75"), ("norm_region", 4, "enum:LRNParameter.NormRegion", False, "ACROSS_CHANNELS"),
        ("k", 5, "float", False, "1"),
    ])
    _enum(lrn, "NormRegion", {"ACROSS_CHANNELS": 0, "WITHIN_CHANNEL": 1})
    pool = _message(file, "PoolingParameter", [
        ("pool", 1, "enum:PoolingParameter.PoolMethod", False, "MAX"), ("kernel_size", 2, "uint32", False, None),
        ("stride", 3, "uint32", False, "1"), ("pad", 4, "uint32", False, "0"),
    ])
    _enum(pool, "PoolMethod", {"MAX": 0, "AVE": 1, "STOCHASTIC": 2})
    layer_params = [("convolution_param", "ConvolutionParameter"), ("inner_product_param", "InnerProductParameter"),
                    ("lrn_param", "LRNParameter"), ("pooling_param", "PoolingParameter")]
    _message(file, "LayerParameter", [
        ("name", 1, "string", False, None), ("type", 2, "string", False, None), ("blobs", 7, "BlobProto", True, None),
        *[(name, number, kind, False, None) for (name, kind), number in zip(layer_params, (106, 117, 118, 121))],
    ])
    v1 = _message(file, "V1LayerParameter", [
        ("name", 4, "string", False, None), ("type", 5, "enum:V1LayerParameter.LayerType", False, None),
        ("blobs", 6, "BlobProto", True, None),
        *[(name, number, kind, False, None) for (name, kind), number in zip(layer_params, (10, 17, 18, 19))],
    ])
    _enum(v1, "LayerType", V1_LAYER_TYPES)
    _message(file, "NetParameter", [
        ("name", 1, "string", False, None), ("layers", 2, "V1LayerParameter", True, None),
        ("layer", 100, "LayerParameter", True, None),
    ])
    return file


@lru_cache(maxsize=None)
def messages() -> dict[str, type]:
    """The message classes by name ("NetParameter", "BlobProto", ...), built once."""
    pool = descriptor_pool.DescriptorPool()
    file = file_descriptor()
    pool.Add(file)
    names = [m.name for m in file.message_type]
    descriptors = {name: pool.FindMessageTypeByName(f"{PACKAGE}.{name}") for name in names}
    if hasattr(message_factory, "GetMessageClass"):  # protobuf >= 4.22
        return {name: message_factory.GetMessageClass(d) for name, d in descriptors.items()}
    factory = message_factory.MessageFactory(pool)  # older protobuf
    return {name: factory.GetPrototype(d) for name, d in descriptors.items()}
