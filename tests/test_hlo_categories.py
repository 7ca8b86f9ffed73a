"""benchmarks/hlo_categories.py puts hand-written HLO instructions in the right category."""

from benchmarks import hlo_categories

VOCAB = 1000

# A small module in the format of compiled.as_text(): fused computations first, then the
# entry computation, then the Python stack tables that stack_frame_id points into.
MODULE_TEXT = """HloModule jit_train_step, is_scheduled=true

%fused_dot (p0: f32[16,64], p1: f32[64,256]) -> f32[16,256] {
  %p0 = f32[16,64]{1,0} parameter(0)
  %p1 = f32[64,256]{1,0} parameter(1)
  ROOT %dot.1 = f32[16,256]{1,0} dot(%p0, %p1), lhs_contracting_dims={1}, rhs_contracting_dims={0}, metadata={op_name="jit(train_step)/jvp(AmosModel.discriminate)/discriminator/block_0/ffn_in/dot_general" stack_frame_id=2}
}

%fused_bits (p0: u32[16,64]) -> u32[16,64] {
  %p0.1 = u32[16,64]{1,0} parameter(0)
  %rotate = u32[16,64]{1,0} shift-left(%p0.1, %p0.1), metadata={op_name="jit(train_step)/discriminator/block_0/ExampleDropout_0/vmap(jit(_bernoulli))/jit(_uniform)/while/body/closed_call/shift_left"}
  %rotate.1 = u32[16,64]{1,0} shift-right-logical(%p0.1, %p0.1), metadata={op_name="jit(train_step)/discriminator/block_0/ExampleDropout_0/vmap(jit(_bernoulli))/jit(_uniform)/while/body/closed_call/shift_right_logical"}
  ROOT %mix = u32[16,64]{1,0} xor(%rotate, %rotate.1), metadata={op_name="jit(train_step)/discriminator/block_0/ExampleDropout_0/vmap(jit(_bernoulli))/jit(_uniform)/while/body/closed_call/xor"}
}

%fused_split (p0: u32[2]) -> u32[2] {
  %p0.4 = u32[2]{0} parameter(0)
  ROOT %split = u32[2]{0} add(%p0.4, %p0.4), metadata={op_name="jit(train_step)/jit(_threefry_split)/step_keys/add"}
}

%fused_mask (p0: u32[16,64]) -> f32[16,64] {
  %p0.3 = u32[16,64]{1,0} parameter(0)
  %uniform = f32[16,64]{1,0} convert(%p0.3), metadata={op_name="jit(train_step)/discriminator/block_0/ExampleDropout_0/vmap(jit(_bernoulli))/jit(_uniform)/convert_element_type"}
  ROOT %masked = f32[16,64]{1,0} multiply(%uniform, %uniform), metadata={op_name="jit(train_step)/discriminator/block_0/ExampleDropout_0/mul"}
}

%fused_norm (p0: f32[16,64]) -> f32[16,64] {
  %p0.2 = f32[16,64]{1,0} parameter(0)
  ROOT %multiply.1 = f32[16,64]{1,0} multiply(%p0.2, %p0.2), metadata={op_name="jit(train_step)/jvp(AmosModel.discriminate)/discriminator/block_0/ffn_norm/mul"}
}

ENTRY %main (x: f32[16,64], w: f32[64,256], e: f32[1000,64], b: u32[16,64]) -> f32[16,256] {
  %x = f32[16,64]{1,0} parameter(0)
  %w = f32[64,256]{1,0} parameter(1)
  %e = f32[1000,64]{1,0} parameter(2)
  %b = u32[16,64]{1,0} parameter(3)
  %gemm_fusion = f32[16,256]{1,0} fusion(%x, %w), kind=kCustom, calls=%fused_dot, metadata={op_name="jit(train_step)/jvp(AmosModel.discriminate)/discriminator/block_0/ffn_in/dot_general" stack_frame_id=2}
  %cublas-gemm.1 = (f32[16,64]{1,0}, s8[0]{0}) custom-call(%x, %x), custom_call_target="__cublas$gemm", metadata={op_name="jit(train_step)/transpose(jvp(AmosModel.discriminate))/discriminator/block_1/attention/query/dot_general" stack_frame_id=2}
  %logits = f32[16,1000]{1,0} custom-call(%x, %e), custom_call_target="__cublas$lt$matmul", metadata={op_name="jit(train_step)/jvp()/dot_general" stack_frame_id=3}
  %logits_grad = f32[16,64]{1,0} dot(%logits, %e), lhs_contracting_dims={1}, rhs_contracting_dims={0}, metadata={op_name="jit(train_step)/transpose(jvp())/dot_general"}
  %embed = f32[16,64]{1,0} gather(%e, %b), offset_dims={1}, collapsed_slice_dims={0}, start_index_map={0}, index_vector_dim=1, slice_sizes={1,64}, metadata={op_name="jit(train_step)/jvp(AmosModel.embed)/jit(_take)/gather"}
  %softmax = f32[16,1000]{1,0} exponential(%logits), metadata={op_name="jit(train_step)/jvp()/exp" stack_frame_id=4}
  %bits_fusion = u32[16,64]{1,0} fusion(%b), kind=kLoop, calls=%fused_bits
  %split_fusion = u32[2]{0} fusion(%b), kind=kLoop, calls=%fused_split
  %mask_fusion = f32[16,64]{1,0} fusion(%bits_fusion), kind=kLoop, calls=%fused_mask
  %gumbel_bits = (u64[2]{0}, u32[16,1000]{1,0}) rng-bit-generator(%b), algorithm=rng_three_fry, metadata={op_name="jit(train_step)/jvp()/closed_call/rng_bit_generator" stack_frame_id=5}
  %rng-bit-generator.1 = (u64[2]{0}, u32[16,64]{1,0}) rng-bit-generator(%b), algorithm=rng_default, metadata={op_name="jit(train_step)/discriminator/ExampleDropout_0/rng_bit_generator"}
  %norm_fusion = f32[16,64]{1,0} fusion(%x), kind=kLoop, calls=%fused_norm
  %adam_update = f32[64,256]{1,0} multiply(%w, %w), metadata={op_name="jit(train_step)/cond/branch_1_fun/mul" stack_frame_id=1}
  %all-reduce.1 = f32[64,256]{1,0} all-reduce(%w), replica_groups={}, to_apply=%fused_norm
  %copy.3 = f32[64,16]{1,0} copy(%x)
  %fmha = (f32[2,4,8,16]{3,2,1,0}, u8[0]{0}) custom-call(%x, %x, %x), custom_call_target="__cudnn$fmhaSoftmax", metadata={op_name="jit(train_step)/discriminator/block_0/attention/dot_product_attention"}
  ROOT %while.1 = f32[16,256]{1,0} while(%gemm_fusion), condition=%fused_norm, body=%fused_norm
}

FileNames
1 "/venv/lib/python3.11/site-packages/optax/_src/transform.py"
2 "amos_jax/models/transformer.py"
3 "amos_jax/models/amos.py"
4 "amos_jax/objective.py"

FunctionNames
1 "scale_by_adam.<locals>.update_fn"
2 "TransformerBlock.__call__"
3 "AmosModel.mlm_logits"
4 "_cross_entropy_forward"
5 "_random_bits"

FileLocations
1 {file_name_id=1 function_name_id=1 line=10 end_line=10 column=1 end_column=2}
2 {file_name_id=2 function_name_id=2 line=20 end_line=20 column=1 end_column=2}
3 {file_name_id=3 function_name_id=3 line=30 end_line=30 column=1 end_column=2}
4 {file_name_id=4 function_name_id=4 line=40 end_line=40 column=1 end_column=2}
5 {file_name_id=4 function_name_id=5 line=50 end_line=50 column=1 end_column=2}

StackFrames
1 {file_location_id=1 parent_frame_id=1}
2 {file_location_id=2 parent_frame_id=2}
3 {file_location_id=3 parent_frame_id=3}
4 {file_location_id=4 parent_frame_id=4}
5 {file_location_id=5 parent_frame_id=5}
"""

MODULE = hlo_categories.parse_module(MODULE_TEXT)


def category(name, ambiguous=False):
  return hlo_categories.categorise(MODULE, name, VOCAB, ambiguous)


def test_parses_every_computation_with_opcodes_shapes_and_frames():
  assert set(MODULE.computations) == {"fused_dot", "fused_bits", "fused_split", "fused_mask",
                                      "fused_norm", "main"}
  gemm = MODULE.instructions["gemm_fusion"]
  assert (gemm.opcode, gemm.calls, gemm.fusion_kind, gemm.dims) == (
      "fusion", "fused_dot", "kCustom", (16, 256))
  assert MODULE.instructions["cublas-gemm.1"].custom_call_target == "__cublas$gemm"
  assert MODULE.instructions["logits"].operands == ("x", "e")
  assert MODULE.frames[4] == ("amos_jax/objective.py", "_cross_entropy_forward")


def test_a_fusion_around_a_dot_outside_attention_is_a_matmul():
  assert category("gemm_fusion") == "matmul"
  assert hlo_categories.is_matmul(MODULE, "gemm_fusion")


def test_ops_under_an_attention_module_are_attention_whatever_their_kind():
  assert category("cublas-gemm.1") == "attention"
  assert hlo_categories.is_matmul(MODULE, "cublas-gemm.1")
  assert category("fmha") == "attention"
  assert not hlo_categories.is_matmul(MODULE, "fmha")


def test_vocabulary_work_is_found_by_shape_or_by_function():
  assert category("logits") == "vocabulary"  # A [16, 1000] output.
  # With the shape rule off, the logits' scope (an anonymous jvp) no longer shows it...
  assert category("logits", ambiguous=True) == "matmul"
  # ...but the objective's cross-entropy function still does.
  assert category("logits_grad") == "vocabulary"  # Reads the [16, 1000] logits' gradient.
  # An embedding lookup reads B x L rows of the [V, H] table, not the vocabulary.
  assert category("embed") == "other"
  assert category("softmax", ambiguous=True) == "vocabulary"


def test_random_bits_are_rng_fused_or_not_but_turning_them_into_a_mask_is_not():
  assert category("bits_fusion") == "rng"  # ThreeFry rounds, whatever their op_name.
  assert category("split_fusion") == "rng"
  assert category("rng-bit-generator.1") == "rng"
  assert category("mask_fusion") == "elementwise"


def test_the_gumbel_noise_bits_count_as_vocabulary_sized_work():
  assert category("gumbel_bits") == "vocabulary"  # [16, 1000] bits...
  assert category("gumbel_bits", ambiguous=True) == "vocabulary"  # ...drawn in _random_bits.


def test_optimizer_collectives_elementwise_and_other():
  assert category("adam_update") == "optimizer"  # Its innermost frame is in optax.
  assert category("all-reduce.1") == "collectives"
  assert category("norm_fusion") == "elementwise"
  assert category("copy.3") == "other"
