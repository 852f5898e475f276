namespace RlhfSharp.Distributed;

/// <summary>
/// <c>MPI_COMM_WORLD</c> of a process started by <c>mpirun</c>: its rank, the number of ranks, and the collective
/// operations data-parallel training uses (sum-all-reduce, barrier; reduce-scatter and all-gather for ZeRO-1). Every rank must call the same
/// collectives in the same order; a rank that fails calls <see cref="Abort"/> so the others do not wait forever.
/// </summary>
public sealed unsafe class MpiWorld
{
    readonly IntPtr comm, mpiFloat, mpiDouble, sum;

    public int Rank { get; }
    public int Size { get; }

    MpiWorld()
    {
        var library = MpiNative.Load();
        comm = MpiNative.Handle(library, "ompi_mpi_comm_world");
        mpiFloat = MpiNative.Handle(library, "ompi_mpi_float");
        mpiDouble = MpiNative.Handle(library, "ompi_mpi_double");
        sum = MpiNative.Handle(library, "ompi_mpi_op_sum");
        Check(MpiNative.MPI_Initialized(out int initialized), "MPI_Initialized");
        if (initialized == 0) Check(MpiNative.MPI_Init(IntPtr.Zero, IntPtr.Zero), "MPI_Init");
        Check(MpiNative.MPI_Comm_rank(comm, out int rank), "MPI_Comm_rank");
        Check(MpiNative.MPI_Comm_size(comm, out int size), "MPI_Comm_size");
        (Rank, Size) = (rank, size);
        // MPI_Finalize at exit lets mpirun see a clean end; without it every rank is reported as having exited early.
        AppDomain.CurrentDomain.ProcessExit += (_, _) => Close();
    }

    /// <summary>Joins the world when this process was started by Open MPI's <c>mpirun</c> (it sets <c>OMPI_COMM_WORLD_SIZE</c>); null otherwise.</summary>
    public static MpiWorld? FromEnvironment() =>
        Environment.GetEnvironmentVariable("OMPI_COMM_WORLD_SIZE") is null ? null : new MpiWorld();

    /// <summary>Replaces each element with its sum over every rank.</summary>
    public void SumInPlace(Span<float> values)
    {
        if (values.IsEmpty) return;
        fixed (float* p = values) Check(MpiNative.MPI_Allreduce(MpiNative.InPlace, p, values.Length, mpiFloat, sum, comm), "MPI_Allreduce");
    }

    /// <inheritdoc cref="SumInPlace(Span{float})"/>
    public void SumInPlace(Span<double> values)
    {
        if (values.IsEmpty) return;
        fixed (double* p = values) Check(MpiNative.MPI_Allreduce(MpiNative.InPlace, p, values.Length, mpiDouble, sum, comm), "MPI_Allreduce");
    }

    /// <summary>
    /// ZeRO's gradient reduction: <paramref name="send"/> holds <see cref="Size"/> blocks of <c>received.Length</c> values,
    /// block r destined for rank r; <paramref name="received"/> becomes the sum over every rank of this rank's block.
    /// </summary>
    public void ReduceScatterSum(ReadOnlySpan<float> send, Span<float> received)
    {
        if (send.Length != received.Length * Size) throw new ArgumentException($"send holds {send.Length} values, not {Size} blocks of {received.Length}.");
        if (received.IsEmpty) return;
        fixed (float* s = send)
        fixed (float* r = received)
            Check(MpiNative.MPI_Reduce_scatter_block(s, r, received.Length, mpiFloat, sum, comm), "MPI_Reduce_scatter_block");
    }

    /// <summary>Every rank's <paramref name="mine"/>, in rank order, into each rank's <paramref name="all"/> (<see cref="Size"/> blocks).</summary>
    public void AllGather(ReadOnlySpan<float> mine, Span<float> all)
    {
        if (all.Length != mine.Length * Size) throw new ArgumentException($"all holds {all.Length} values, not {Size} blocks of {mine.Length}.");
        if (mine.IsEmpty) return;
        fixed (float* s = mine)
        fixed (float* r = all)
            Check(MpiNative.MPI_Allgather(s, mine.Length, mpiFloat, r, mine.Length, mpiFloat, comm), "MPI_Allgather");
    }

    /// <summary>Every rank's <paramref name="mine"/>, in rank order, into rank 0's <paramref name="all"/> (<see cref="Size"/> blocks; ignored elsewhere).</summary>
    public void GatherToRoot(ReadOnlySpan<float> mine, Span<float> all)
    {
        if (Rank == 0 && all.Length != mine.Length * Size) throw new ArgumentException($"all holds {all.Length} values, not {Size} blocks of {mine.Length}.");
        if (mine.IsEmpty) return;
        fixed (float* s = mine)
        fixed (float* r = all)
            Check(MpiNative.MPI_Gather(s, mine.Length, mpiFloat, r, mine.Length, mpiFloat, 0, comm), "MPI_Gather");
    }

    public void Barrier() => Check(MpiNative.MPI_Barrier(comm), "MPI_Barrier");

    /// <summary>Ends every rank: what a failing rank must do, since the others would wait in their next collective forever.</summary>
    public void Abort(int code) => MpiNative.MPI_Abort(comm, code);

    void Close()
    {
        MpiNative.MPI_Finalized(out int finalized);
        if (finalized == 0) MpiNative.MPI_Finalize();
    }

    // Open MPI's default error handler (MPI_ERRORS_ARE_FATAL) aborts before a code is returned; this catches the rest.
    static void Check(int code, string call)
    {
        if (code != 0) throw new RlhfException($"{call} failed with MPI error {code}.");
    }
}
