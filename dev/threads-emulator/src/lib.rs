//! placeholder: the emulator is being built
