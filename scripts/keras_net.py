"""A .net file built layer for layer as a Keras Sequential model: the Keras cross-checks
(tests/keras_check.py) and the study in Keras (scripts/keras_study.py). It reads the layers the
five study networks use (conv, pool, dropout, batchnorm, flatten, dense, activation, with their
options and l1/l2 kernel regularizers) and skips the train block."""
import keras
from keras import layers

ACTS = {"relu": "relu", "sigmoid": "sigmoid", "tanh": "tanh", "softmax": "softmax",
        "linear": None}


def regularizer(opt):
    l1, l2 = float(opt.get("l1", 0)), float(opt.get("l2", 0))
    return keras.regularizers.L1L2(l1=l1, l2=l2) if l1 or l2 else None


def statements(path):
    in_train = False
    for raw in open(path):
        for line in raw.split("#")[0].split(";"):
            words = line.split()
            if not words:
                continue
            if words[0] == "train":
                in_train = "}" not in line
                continue
            if in_train:
                in_train = "}" not in line
                continue
            yield words


def build(path):
    keras.backend.clear_session()  # layer names from conv2d again, as in a fresh session
    model = keras.Sequential()
    for words in statements(path):
        kw, pos = words[0], [w for w in words[1:] if "=" not in w]
        opt = dict(w.split("=", 1) for w in words[1:] if "=" in w)
        act = next((a for a in pos if a in ACTS or a == "leaky_relu"), None)
        if kw == "input":
            dims = [int(d) for d in pos[0].split("x")]
            model.add(keras.Input(tuple(dims) if len(dims) == 3 else (*dims, 1) if len(dims) == 2 else (dims[0],)))
        elif kw == "conv":
            k = pos[1].split("x")
            s = opt.get("stride", "1").split("x")
            model.add(layers.Conv2D(int(pos[0]), (int(k[0]), int(k[-1])),
                                    strides=(int(s[0]), int(s[-1])),
                                    padding=opt.get("pad", "valid"), activation=ACTS.get(act),
                                    use_bias=opt.get("bias", "yes") == "yes",
                                    kernel_regularizer=regularizer(opt)))
        elif kw == "pool":
            k = pos[0].split("x")
            size = (int(k[0]), int(k[-1]))
            s = opt.get("stride")
            strides = (int(s.split("x")[0]), int(s.split("x")[-1])) if s else size
            cls = layers.AveragePooling2D if "avg" in pos else layers.MaxPooling2D
            model.add(cls(size, strides=strides))
        elif kw == "dropout":
            model.add(layers.Dropout(float(pos[0])))
        elif kw == "batchnorm":
            model.add(layers.BatchNormalization(momentum=float(opt.get("momentum", 0.99)),
                                                epsilon=float(opt.get("eps", 0.001))))
        elif kw == "flatten":
            model.add(layers.Flatten())
        elif kw == "dense":
            model.add(layers.Dense(int(pos[0]), activation=ACTS.get(act),
                                   use_bias=opt.get("bias", "yes") == "yes",
                                   kernel_regularizer=regularizer(opt)))
        elif kw == "activation":
            model.add(layers.Activation(pos[0]))
        elif kw != "network":
            raise SystemExit(f"{path}: keras_check.py does not build '{kw}'")
    return model
