# Sourced by the scripts: lets Open MPI run as root (CI and fresh machines run as root) and place more
# ranks than cores (3 ranks on 2 cores: rank 0 mostly sleeps). Binding is off because Open MPI would
# otherwise pin each rank to one core and LibTorch's threads would share it.
if [[ $(id -u) -eq 0 ]]; then
  export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fi
MIL_MPIRUN_FLAGS=(--oversubscribe --bind-to none)
