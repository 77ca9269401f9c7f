/* Headless Gwyddion for the plug-in tests: load a file with Gwyddion's own file modules, run data process
 * functions (the afm-sr plug-ins) on its channels as the Data Process menu would, save it with the .gwy writer.
 *
 *   harness OUT.gwy IN.file SPEC...     SPEC = CHANNEL_ID:CROP[m]:FUNC[,FUNC...]
 *
 * Each SPEC makes channel CHANNEL_ID the current one, crops it in place to its top-left CROP x CROP pixels
 * (0: no crop; cropping keeps the pixel size), with `m` gives it a mask (the pixels above its mean) and runs
 * each FUNC on it with GWY_RUN_IMMEDIATE, printing
 * `ran FUNC on CHANNEL_ID: new channel N` or `... : no new channel` on stdout.  Gwyddion's own messages
 * (what its Program Messages window shows) go to stderr.
 *
 * gwy_app_init_nongui() disables the plug-in proxy, so main() repeats its other steps without that call. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <app/gwyapp.h>
#include <libgwymodule/gwymodule.h>
#include <libprocess/gwyprocess.h>
#include <libprocess/gwycalibration.h>

static void
init_gwyddion_with_plugins(void)
{
    gchar *settings_file;
    gchar **module_dirs;

    gwy_app_setup_logging(GWY_APP_LOGGING_TO_CONSOLE);
    gwy_widgets_type_init();
    gwy_undo_set_enabled(FALSE);
    gwy_app_wait_set_enabled(FALSE);
    gwy_app_data_browser_set_gui_enabled(FALSE);
    gwy_resource_class_load(g_type_class_peek(GWY_TYPE_GRADIENT));
    gwy_resource_class_load(g_type_class_peek(GWY_TYPE_GL_MATERIAL));
    gwy_resource_class_load(g_type_class_peek(GWY_TYPE_GRAIN_VALUE));
    gwy_resource_class_load(g_type_class_peek(GWY_TYPE_CALIBRATION));
    settings_file = gwy_app_settings_get_settings_filename();
    if (g_file_test(settings_file, G_FILE_TEST_IS_REGULAR))
        gwy_app_settings_load(settings_file, NULL);
    g_free(settings_file);
    gwy_app_settings_get();
    module_dirs = gwy_app_settings_get_module_dirs();
    gwy_module_register_modules((const gchar**)module_dirs);
    g_strfreev(module_dirs);
}

/* The largest channel id in data (a channel a function adds gets a larger one). */
static gint
max_channel_id(GwyContainer *data)
{
    gint *ids = gwy_app_data_browser_get_data_ids(data);
    gint i, max = -1;

    for (i = 0; ids[i] >= 0; i++)
        max = MAX(max, ids[i]);
    g_free(ids);
    return max;
}

static gboolean
run_spec(GwyContainer *data, const gchar *spec)
{
    gchar **parts = g_strsplit(spec, ":", 3), **funcs;
    GwyDataField *field, *mask;
    gint id, crop, i, before;

    if (g_strv_length(parts) != 3) {
        fprintf(stderr, "harness: bad spec %s (want CHANNEL_ID:CROP[m]:FUNC[,FUNC...])\n", spec);
        g_strfreev(parts);
        return FALSE;
    }
    id = atoi(parts[0]);
    crop = atoi(parts[1]);
    if (!gwy_container_gis_object(data, gwy_app_get_data_key_for_id(id), &field)) {
        fprintf(stderr, "harness: no channel %d\n", id);
        g_strfreev(parts);
        return FALSE;
    }
    if (crop > 0)
        gwy_data_field_resize(field, 0, 0,
                              MIN(crop, gwy_data_field_get_xres(field)), MIN(crop, gwy_data_field_get_yres(field)));
    if (strchr(parts[1], 'm')) {
        mask = gwy_data_field_duplicate(field);
        gwy_data_field_threshold(mask, gwy_data_field_get_avg(field), 0.0, 1.0);
        gwy_container_set_object(data, gwy_app_get_mask_key_for_id(id), mask);
        g_object_unref(mask);
    }
    funcs = g_strsplit(parts[2], ",", 0);
    for (i = 0; funcs[i]; i++) {
        gwy_app_data_browser_select_data_field(data, id);
        before = max_channel_id(data);
        gwy_process_func_run(funcs[i], data, GWY_RUN_IMMEDIATE);
        if (max_channel_id(data) > before)
            printf("ran %s on %d: new channel %d\n", funcs[i], id, max_channel_id(data));
        else
            printf("ran %s on %d: no new channel\n", funcs[i], id);
        fflush(stdout);
    }
    g_strfreev(funcs);
    g_strfreev(parts);
    return TRUE;
}

int
main(int argc, char *argv[])
{
    GwyContainer *data;
    GError *err = NULL;
    gint i;

    if (argc < 4) {
        fprintf(stderr, "usage: %s OUT.gwy IN.file CHANNEL_ID:CROP[m]:FUNC[,FUNC...]...\n", argv[0]);
        return 2;
    }
    init_gwyddion_with_plugins();
    if (!(data = gwy_file_load(argv[2], GWY_RUN_NONINTERACTIVE, &err))) {
        fprintf(stderr, "harness: cannot load %s: %s\n", argv[2], err ? err->message : "unknown error");
        return 1;
    }
    gwy_app_data_browser_add(data);
    for (i = 3; i < argc; i++) {
        if (!run_spec(data, argv[i]))
            return 1;
    }
    if (!gwy_file_save(data, argv[1], GWY_RUN_NONINTERACTIVE, &err)) {
        fprintf(stderr, "harness: cannot save %s: %s\n", argv[1], err ? err->message : "unknown error");
        return 1;
    }
    return 0;
}
