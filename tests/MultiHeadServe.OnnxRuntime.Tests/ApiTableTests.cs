using MultiHeadServe.OnnxRuntime.Native;

namespace MultiHeadServe.OnnxRuntime.Tests;

/// <summary>
/// A wrong index into the <c>OrtApi</c> table calls the wrong function and usually crashes the process.
/// This guard drives every public path of the binding and then requires that every entry the binding
/// declares was actually called — so no entry ships untested.
/// </summary>
public sealed class ApiTableTests
{
    [Fact]
    public void EveryDeclaredEntryIsExercised()
    {
        using (OrtEnvironment.Create(OrtLoggingLevel.Error, "guard"))
        {
            Assert.NotEmpty(OrtEnvironment.AvailableProviders());
        }

        using (OrtValue.CreateCpuMemoryInfo())
        {
        }

        foreach (var device in new[] { 0, 1 })
        {
            Assert.Throws<ExecutionProviderUnavailableException>(() =>
                InferenceSession.FromFile(TestModels.Linear, new SessionOptions { ExecutionProvider = ExecutionProvider.Cuda, CudaDeviceId = device }));
        }

        using (var auto = InferenceSession.FromFile(TestModels.ElementTypes, new SessionOptions
        {
            ExecutionProvider = ExecutionProvider.Auto,
            EnableMemoryPattern = false,
            EnableCpuMemoryArena = false,
            ExecutionMode = ExecutionMode.Parallel,
            ConfigEntries = { ["session.intra_op.allow_spinning"] = "0" },
        }))
        {
            Assert.Equal(5, auto.Inputs.Count);
        }

        var bytes = File.ReadAllBytes(TestModels.Linear);
        using var session = InferenceSession.FromBytes(bytes, new SessionOptions { ExecutionProvider = ExecutionProvider.Cpu });
        using var input = OrtValue.CreateTensor(new float[4], 1, 4);
        using (var runOptions = new OrtRunOptions())
        {
            runOptions.Terminate();
            Assert.Throws<OnnxRuntimeException>(() => session.Run([TestModels.Named("x", input)], null, runOptions));
            runOptions.Reset();
            using var result = session.Run([TestModels.Named("x", input)], null, runOptions);
            Assert.Equal(3, result["y"].GetData<float>().Length);
            Assert.Equal(TensorElementType.Float, result["y"].ElementType);
        }

        using (InferenceSession.FromFile(TestModels.Linear))
        {
        }

        var unused = Enum.GetValues<OrtNative.Entry>().Except(OrtNative.UsedEntries()).ToList();
        Assert.True(unused.Count == 0, "Entries declared but never called: " + string.Join(", ", unused));
    }
}
