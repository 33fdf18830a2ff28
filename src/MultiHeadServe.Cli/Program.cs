using MultiHeadServe.Cli;

return CommandLineHost.Run(MhsCommand.Create(), args, Console.Out, Console.Error);
