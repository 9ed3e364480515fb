#pragma once
// `mhim heatmap`: a trained model's instance scores drawn on the slide (app/cmd_heatmap.cpp).
#include "app/commands.h"

namespace mil::app {

/// `mhim heatmap` with the tokens after its name; returns the exit code.
int cmd_heatmap(const Tokens& tokens);

}  // namespace mil::app
