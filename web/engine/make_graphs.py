"""Writes the ONNX attention graphs of the real-engine test (scripts/engine-test).

    python make_graphs.py OUT_DIR

Every graph computes softmax(q k^T * scale + bias) v, with
    q     [B, N, S, D]      the queries
    k, v  [B, N, T, D]      the keys and values
    bias  [Bb, N, S, T]     the ALiBi bias, Bb = 1 (shared by the batch) or B
    out   [B, N, S, D]
D = 16 and scale = 1/4 (exact in f16) are the model's; B, N, S, T and Bb are symbolic, so one
graph serves every shape of a case. Two forms, each in f32 and in f16:
  ops_{f32,f16}.onnx       plain ONNX ops: Transpose, MatMul, Mul, Add, Softmax
  mha_{f32,f16}_n{N}.onnx  com.microsoft MultiHeadAttention with its attention_bias input
                           (the engine's own attention kernel; num_heads is an attribute, so
                           one graph per head count), q, k, v reshaped to [B, S, N*D] around it
The graphs are checked with onnx.checker and are deterministic: the same bytes on every run.
"""

import sys
from pathlib import Path

import onnx
from onnx import TensorProto, helper

HEAD_DIM = 16
SCALE = 0.25  # 1 / sqrt(HEAD_DIM)
HEAD_COUNTS = (4, 6, 8)  # the N of the MultiHeadAttention graphs: the test's modules
OPSET = 17
IR_VERSION = 8  # onnxruntime-web 1.30 reads IR 8 (and later); keep the files old-reader friendly

DTYPES = {"f32": TensorProto.FLOAT, "f16": TensorProto.FLOAT16}


def io(dtype, heads="N"):
    """The four inputs and the output, symbolic dims by name."""
    elem = DTYPES[dtype]
    inputs = [
        helper.make_tensor_value_info("q", elem, ["B", heads, "S", HEAD_DIM]),
        helper.make_tensor_value_info("k", elem, ["B", heads, "T", HEAD_DIM]),
        helper.make_tensor_value_info("v", elem, ["B", heads, "T", HEAD_DIM]),
        helper.make_tensor_value_info("bias", elem, ["Bb", heads, "S", "T"]),
    ]
    output = helper.make_tensor_value_info("out", elem, ["B", heads, "S", HEAD_DIM])
    return inputs, output


def scalar(name, dtype, value):
    return helper.make_tensor(name, DTYPES[dtype], [], [value])


def ops_graph(dtype):
    inputs, output = io(dtype)
    nodes = [
        helper.make_node("Transpose", ["k"], ["kt"], perm=[0, 1, 3, 2], name="k_transposed"),
        helper.make_node("MatMul", ["q", "kt"], ["qk"], name="scores"),
        helper.make_node("Mul", ["qk", "scale"], ["scaled"], name="scaled"),
        helper.make_node("Add", ["scaled", "bias"], ["biased"], name="biased"),
        helper.make_node("Softmax", ["biased"], ["probs"], axis=-1, name="probs"),
        helper.make_node("MatMul", ["probs", "v"], ["out"], name="out"),
    ]
    graph = helper.make_graph(
        nodes, f"alibi_attention_ops_{dtype}", inputs, [output], [scalar("scale", dtype, SCALE)]
    )
    return model(graph, [helper.make_opsetid("", OPSET)])


def mha_graph(dtype, heads):
    inputs, output = io(dtype, heads)
    shape = lambda name, dims: helper.make_tensor(name, TensorProto.INT64, [len(dims)], dims)
    nodes = []
    for x in ("q", "k", "v"):  # [B, N, L, D] -> [B, L, N, D] -> [B, L, N*D]
        nodes.append(helper.make_node("Transpose", [x], [f"{x}_bsnd"], perm=[0, 2, 1, 3]))
        nodes.append(helper.make_node("Reshape", [f"{x}_bsnd", "to_bsd"], [f"{x}_bsd"]))
    nodes += [
        helper.make_node(
            "MultiHeadAttention",
            # query, key, value, bias (of the projections), key_padding_mask, attention_bias
            ["q_bsd", "k_bsd", "v_bsd", "", "", "bias"],
            ["out_bsd"],
            domain="com.microsoft",
            num_heads=heads,
            scale=SCALE,
            name="attention",
        ),
        helper.make_node("Reshape", ["out_bsd", "to_bsnd"], ["out_bsnd"]),
        helper.make_node("Transpose", ["out_bsnd"], ["out"], perm=[0, 2, 1, 3]),
    ]
    initializers = [shape("to_bsd", [0, 0, -1]), shape("to_bsnd", [0, 0, heads, HEAD_DIM])]
    graph = helper.make_graph(nodes, f"alibi_attention_mha_{dtype}_n{heads}", inputs, [output], initializers)
    return model(graph, [helper.make_opsetid("", OPSET), helper.make_opsetid("com.microsoft", 1)])


def model(graph, opsets):
    m = helper.make_model(graph, opset_imports=opsets, producer_name="alibi-wgpu make_graphs.py")
    m.ir_version = IR_VERSION
    onnx.checker.check_model(m, full_check=False)
    return m


def main():
    out = Path(sys.argv[1] if len(sys.argv) > 1 else ".")
    out.mkdir(parents=True, exist_ok=True)
    graphs = {}
    for dtype in DTYPES:
        graphs[f"ops_{dtype}.onnx"] = ops_graph(dtype)
        for heads in HEAD_COUNTS:
            graphs[f"mha_{dtype}_n{heads}.onnx"] = mha_graph(dtype, heads)
    for name, m in graphs.items():
        (out / name).write_bytes(m.SerializeToString(deterministic=True))
    # The plain graphs pass onnx's full check (shape inference); contrib ops have no schema there.
    for dtype in DTYPES:
        onnx.checker.check_model(graphs[f"ops_{dtype}.onnx"], full_check=True)
    print(f"make_graphs: {len(graphs)} graphs in {out} (onnx {onnx.__version__})")


if __name__ == "__main__":
    main()
