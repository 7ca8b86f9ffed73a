"""Fixed ids of the special tokens, shared by the tokenizer, the data and the model."""

PAD_ID = 0
UNK_ID = 1
CLS_ID = 2
SEP_ID = 3
MASK_ID = 4

PAD = "[PAD]"
UNK = "[UNK]"
CLS = "[CLS]"
SEP = "[SEP]"
MASK = "[MASK]"

# Token ids that masking never selects.
NEVER_MASKED = (PAD_ID, UNK_ID, CLS_ID, SEP_ID, MASK_ID)
